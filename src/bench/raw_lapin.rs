//! `callops bench broker --raw`: the baseline the broker is measured against, a plain
//! lapin loop with none of the broker's machinery.

use crate::queue::rabbitmq::MAX_ROUND;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;

/// The baseline: a plain lapin loop — persistent publishes with confirms (pipelined in
/// windows, as the broker does) and a manual-ack consumer with prefetch 500 — on one
/// durable queue, deleted afterwards. Returns (publish msg/s, consume msg/s).
pub async fn raw_lapin_bench(
    amqp_url: &str,
    queue_prefix: &str,
    messages: u64,
) -> anyhow::Result<(f64, f64)> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "connecting to RabbitMQ at {}: {err}",
                crate::store::redact_url(amqp_url)
            )
        })?;
    let ch = conn.create_channel().await?;
    let q = format!("{queue_prefix}.raw");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    let result = raw_loop(&conn, &ch, &q, messages).await;
    let _ = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "bench done".into()).await;
    result
}

async fn raw_loop(
    conn: &Connection,
    ch: &Channel,
    q: &str,
    messages: u64,
) -> anyhow::Result<(f64, f64)> {
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = br#"{"i":0,"audio_url":"https://example.invalid/a.wav"}"#;
    let start = std::time::Instant::now();
    let mut sent = 0;
    while sent < messages {
        let window = (messages - sent).min(MAX_ROUND as u64);
        let mut confirms = Vec::with_capacity(window as usize);
        for _ in 0..window {
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    q.into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?,
            );
        }
        for c in futures_util::future::join_all(confirms).await {
            anyhow::ensure!(c?.is_ack(), "raw bench publish was nacked");
        }
        sent += window;
    }
    let publish = messages as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let cch = conn.create_channel().await?;
    cch.basic_qos(500, BasicQosOptions::default()).await?;
    let mut consumer = cch
        .basic_consume(
            q.into(),
            "raw-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let start = std::time::Instant::now();
    let mut got = 0;
    while got < messages {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!("raw bench: no delivery for 30 s after {got} of {messages}")
            })?;
        let Some(d) = next else {
            anyhow::bail!("raw bench: consumer cancelled after {got} of {messages}");
        };
        d?.acker.ack(BasicAckOptions::default()).await?;
        got += 1;
    }
    let consume = got as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let _ = cch.close(200, "bench done".into()).await;
    Ok((publish, consume))
}
