//! A tiny HTTP/1.1 server: one request per connection (`Connection: close`), bodies by
//! Content-Length or chunked, every request logged for assertions, and a queue of
//! injected replies that take precedence over the fake service's own answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// multipart/form-data parts, parsed by the boundary in Content-Type.
    pub fn multipart(&self) -> Vec<Part> {
        let Some(boundary) = self
            .header("content-type")
            .and_then(|ct| ct.split("boundary=").nth(1))
            .map(|b| b.trim_matches('"').to_string())
        else {
            return Vec::new();
        };
        let delim = format!("--{boundary}").into_bytes();
        let mut parts = Vec::new();
        for chunk in split(&self.body, &delim).into_iter().skip(1) {
            if chunk.starts_with(b"--") {
                break;
            }
            let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
            let Some(at) = find(chunk, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&chunk[..at]).to_string();
            let data = &chunk[at + 4..];
            let data = data.strip_suffix(b"\r\n").unwrap_or(data).to_vec();
            // Attributes live on the Content-Disposition line; a value ends at its
            // closing quote.
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .unwrap_or("")
                .to_string();
            let attr = |key: &str| {
                disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.split('"').next().unwrap_or("").to_string())
            };
            let content_type = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("content-type:")
                    .then(|| l[13..].trim().to_string())
            });
            parts.push(Part {
                name: attr("name").unwrap_or_default(),
                file_name: attr("filename"),
                content_type,
                data,
            });
        }
        parts
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.multipart()
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delim) {
        out.push(&hay[..i]);
        hay = &hay[i + delim.len()..];
    }
    out.push(hay);
    out
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Resp {
    pub fn json(status: u16, v: serde_json::Value) -> Resp {
        Resp::raw(status, "application/json", v.to_string().into_bytes())
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn after(mut self, d: Duration) -> Resp {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Req, &str) -> Resp + Send + Sync;

#[derive(Clone)]
pub struct Server {
    pub base: String,
    log: Arc<Mutex<Vec<Req>>>,
    /// Replies to hand out instead of the handler's, each for the first request that
    /// matches its (method, path).
    injected: Arc<Mutex<VecDeque<Injected>>>,
}

/// (method, path) to match, and the reply.
type Injected = ((String, String), Resp);

impl Server {
    /// Serve `handler(request, base_url)` on a free local port until the test ends.
    pub async fn start(handler: impl Fn(&Req, &str) -> Resp + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Server {
            base: base.clone(),
            log: Arc::default(),
            injected: Arc::default(),
        };
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, injected) = (server.log.clone(), server.injected.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log, injected, base) =
                    (handler.clone(), log.clone(), injected.clone(), base.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    let Some(req) = read_request(&mut reader).await else {
                        return;
                    };
                    log.lock().unwrap().push(req.clone());
                    let next = {
                        let mut q = injected.lock().unwrap();
                        q.iter()
                            .position(|((m, p), _)| *m == req.method && *p == req.path)
                            .and_then(|i| q.remove(i))
                            .map(|(_, r)| r)
                    };
                    let resp = next.unwrap_or_else(|| handler(&req, &base));
                    tokio::time::sleep(resp.delay).await;
                    let mut head = format!(
                        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                        resp.status,
                        reason(resp.status),
                        resp.body.len()
                    );
                    for (k, v) in &resp.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = write.write_all(head.as_bytes()).await;
                    let _ = write.write_all(&resp.body).await;
                    let _ = write.shutdown().await;
                });
            }
        });
        server
    }

    /// The next `method path` request gets this reply instead of the fake service's.
    pub fn inject(&self, method: &str, path: &str, resp: Resp) {
        self.injected
            .lock()
            .unwrap()
            .push_back(((method.into(), path.into()), resp));
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<Req> {
    let mut line = String::new();
    r.read_line(&mut line).await.ok()?;
    let mut it = line.split_whitespace();
    let method = it.next()?.to_string();
    let target = it.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await.ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; n];
        r.read_exact(&mut body).await.ok()?;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (unescape(k), unescape(v))
        })
        .collect();
    Some(Req {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
