//! RabbitMQ backend (placeholder until implemented).
use super::*;

pub struct RabbitBroker;

impl RabbitBroker {
    pub async fn connect(_store: Store, _settings: BrokerSettings) -> Result<RabbitBroker> {
        Err(QueueError::Other("rabbitmq backend not built yet".into()))
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }
    async fn publish(&self, _job: &Job) -> Result<()> {
        unimplemented!()
    }
    async fn publish_many(&self, _jobs: &[Job]) -> Result<()> {
        unimplemented!()
    }
    async fn consume(&self, _spec: ConsumeSpec) -> Result<Consumer> {
        unimplemented!()
    }
    async fn queue_stats(&self, _b: &[i64]) -> Result<Vec<QueueStat>> {
        unimplemented!()
    }
    async fn unarchived_dead_letters(&self) -> Result<Vec<QueueStat>> {
        unimplemented!()
    }
    async fn drain_dead_letters(&self) -> Result<u64> {
        unimplemented!()
    }
    fn is_connected(&self) -> bool {
        false
    }
    async fn close(&self) {}
}

pub async fn raw_lapin_bench(
    _amqp_url: &str,
    _queue_prefix: &str,
    _messages: u64,
) -> anyhow::Result<(f64, f64)> {
    anyhow::bail!("not built yet")
}
