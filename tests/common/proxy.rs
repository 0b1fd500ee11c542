//! A TCP proxy in front of a real service (RabbitMQ, Postgres) whose connections a test
//! can cut, as a network failure would.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy in front of RabbitMQ whose connections the test can cut.
pub struct Proxy {
    pub port: u16,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let l2 = links.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let up = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(up).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l2.lock().unwrap().push(h);
            }
        });
        Proxy { port, links }
    }

    /// Drop every proxied connection at once (both sockets close).
    pub fn cut(&self) -> usize {
        let mut l = self.links.lock().unwrap();
        let n = l.len();
        for h in l.drain(..) {
            h.abort();
        }
        n
    }
}

/// A proxy in front of the RabbitMQ of `amqp` and the same URL through it.
pub async fn amqp_via_proxy(amqp: &str) -> (Proxy, String) {
    let upstream = amqp
        .split_once('@')
        .map(|(_, h)| h.split('/').next().unwrap_or("127.0.0.1:5672").to_string())
        .unwrap_or_else(|| "127.0.0.1:5672".into());
    let proxy = Proxy::start(upstream).await;
    let (creds, rest) = amqp
        .split_once('@')
        .unwrap_or(("amqp://guest:guest", "127.0.0.1:5672/%2f"));
    let vhost = rest.split_once('/').map(|x| x.1).unwrap_or("%2f");
    let url = format!("{creds}@127.0.0.1:{}/{vhost}", proxy.port);
    (proxy, url)
}
