//! A broker the console can open without: it connects in the background and retries until
//! the broker answers, answering "unavailable" (with the last connection error) meanwhile.
//! The console is for outages; it must open while RabbitMQ is down and show that it is.

use crate::queue::{
    Broker, BrokerSettings, ConsumeSpec, Consumer, DynBroker, Job, QueueError, QueueStat, Result,
};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct LateBroker {
    kind: &'static str,
    inner: RwLock<Option<DynBroker>>,
    last_error: RwLock<String>,
}

impl LateBroker {
    /// Start connecting `kind` in the background, every `retry` until it succeeds.
    pub fn connect(
        kind: &str,
        settings: BrokerSettings,
        store: Store,
        retry: Duration,
    ) -> Arc<LateBroker> {
        let me = Arc::new(LateBroker {
            kind: if kind == "rabbitmq" {
                "rabbitmq"
            } else {
                "database"
            },
            inner: RwLock::new(None),
            last_error: RwLock::new("connecting…".into()),
        });
        let (weak, kind) = (Arc::downgrade(&me), kind.to_string());
        tokio::spawn(async move {
            loop {
                let r = crate::queue::connect(&kind, settings.clone(), store.clone()).await;
                let Some(me) = weak.upgrade() else {
                    // The console closed meanwhile: close what was opened, if anything.
                    if let Ok(b) = r {
                        b.close().await;
                    }
                    return;
                };
                match r {
                    Ok(b) => {
                        *me.inner.write().unwrap_or_else(|e| e.into_inner()) = Some(b);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, broker = %kind, "console: broker not reachable yet; retrying");
                        *me.last_error.write().unwrap_or_else(|e| e.into_inner()) =
                            format!("{e} (retrying every {} s)", retry.as_secs());
                    }
                }
                drop(me);
                tokio::time::sleep(retry).await;
            }
        });
        me
    }

    fn get(&self) -> Result<DynBroker> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                QueueError::Unavailable(
                    self.last_error
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                )
            })
    }
}

#[async_trait]
impl Broker for LateBroker {
    fn kind(&self) -> &'static str {
        self.kind
    }
    async fn publish(&self, job: &Job) -> Result<()> {
        self.get()?.publish(job).await
    }
    async fn publish_many(&self, jobs: &[Job]) -> Result<()> {
        self.get()?.publish_many(jobs).await
    }
    async fn consume(&self, spec: ConsumeSpec) -> Result<Consumer> {
        self.get()?.consume(spec).await
    }
    async fn queue_stats(&self, businesses: &[i64]) -> Result<Vec<QueueStat>> {
        self.get()?.queue_stats(businesses).await
    }
    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        self.get()?.unarchived_dead_letters().await
    }
    async fn drain_dead_letters(&self) -> Result<u64> {
        self.get()?.drain_dead_letters().await
    }
    fn is_connected(&self) -> bool {
        self.get().is_ok_and(|b| b.is_connected())
    }
    fn enqueued(&self) {
        if let Ok(b) = self.get() {
            b.enqueued();
        }
    }
    fn relay_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.get().ok().and_then(|b| b.relay_signal())
    }
    async fn delete_topology(&self) -> Result<()> {
        self.get()?.delete_topology().await
    }
    async fn close(&self) {
        let b = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(b) = b {
            b.close().await;
        }
    }
}
