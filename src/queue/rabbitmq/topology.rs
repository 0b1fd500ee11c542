//! Names of the exchanges and queues under `settings.prefix`, their declarations (the fixed
//! topology on connect, work queues on demand) and their deletion.

use super::{e, long_string, Conn, Inner, RECONNECT_WAIT};
use crate::domain::stage::Stage;
use crate::queue::Result;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

impl Inner {
    fn n(&self, s: &str) -> String {
        format!("{}.{s}", self.settings.prefix)
    }

    pub(super) fn work_exchange(&self) -> String {
        self.n("work")
    }

    fn dlx(&self) -> String {
        self.n("dlx")
    }

    pub(super) fn dlq(&self, stage: Stage) -> String {
        self.n(&format!("dlq.{stage}"))
    }

    fn delay_name(&self, d: Duration) -> String {
        self.n(&format!("delay.{}", d.as_millis()))
    }

    pub(super) fn work_queue(&self, routing_key: &str) -> String {
        self.n(routing_key)
    }

    /// The delay tier for `delay`: the shortest tier at least that long (else the longest),
    /// since only the tiers' exchanges exist.
    pub(super) fn delay_exchange_for(&self, delay: Duration) -> String {
        let tiers = self.settings.policy.tier_delays();
        let tier = tiers
            .iter()
            .copied()
            .find(|t| *t >= delay)
            .unwrap_or_else(|| *tiers.last().expect("at least one tier"));
        self.delay_name(tier)
    }

    pub(super) async fn declare_topology(&self, ch: &Channel) -> Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for x in [self.work_exchange(), self.dlx()] {
            ch.exchange_declare(
                x.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("declaring exchange {x}"), err))?;
        }
        for stage in Stage::ALL {
            let q = self.dlq(stage);
            ch.queue_declare(q.as_str().into(), durable_queue(), FieldTable::default())
                .await
                .map_err(|err| e(format!("declaring dead-letter queue {q}"), err))?;
            ch.queue_bind(
                q.as_str().into(),
                self.dlx().into(),
                format!("{stage}.*").into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("binding dead-letter queue {q}"), err))?;
        }
        for d in self.settings.policy.tier_delays() {
            let name = self.delay_name(d);
            ch.exchange_declare(
                name.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("declaring delay exchange {name}"), err))?;
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(d.as_millis() as i64),
            );
            // No x-dead-letter-routing-key: expired messages keep `{stage}.{business}`.
            args.insert(
                "x-dead-letter-exchange".into(),
                long_string(self.work_exchange()),
            );
            ch.queue_declare(name.as_str().into(), durable_queue(), args)
                .await
                .map_err(|err| e(format!("declaring delay queue {name}"), err))?;
            ch.queue_bind(
                name.as_str().into(),
                name.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| e(format!("binding delay queue {name}"), err))?;
        }
        Ok(())
    }

    pub(super) async fn declare_work_queue(&self, ch: &Channel, routing_key: &str) -> Result<()> {
        let q = self.work_queue(routing_key);
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), long_string(self.dlx()));
        ch.queue_declare(q.as_str().into(), durable_queue(), args)
            .await
            .map_err(|err| e(format!("declaring queue {q}"), err))?;
        ch.queue_bind(
            q.as_str().into(),
            self.work_exchange().into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|err| {
            e(
                format!("binding queue {q} to {}", self.work_exchange()),
                err,
            )
        })?;
        self.known_queues
            .lock()
            .unwrap()
            .insert(routing_key.to_string());
        Ok(())
    }

    /// Declare the work queues of `routing_keys` not yet declared on `conn`. Uses a channel
    /// of its own: a failed declare closes its channel, which must not be a publisher's.
    pub(super) async fn ensure_declared(
        &self,
        conn: &Conn,
        routing_keys: &BTreeSet<String>,
    ) -> Result<()> {
        let missing: Vec<&String> = {
            let declared = conn.declared.lock().unwrap();
            routing_keys
                .iter()
                .filter(|rk| !declared.contains(*rk))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let ch = conn
            .connection
            .create_channel()
            .await
            .map_err(|err| e("opening a channel to declare queues", err))?;
        for rk in missing {
            self.declare_work_queue(&ch, rk).await?;
            conn.declared.lock().unwrap().insert(rk.clone());
        }
        let _ = ch.close(200, "queues declared".into()).await;
        Ok(())
    }

    pub(super) async fn delete_topology(&self) -> Result<()> {
        let conn = self.live_conn(Instant::now() + RECONNECT_WAIT).await?;
        let delays: Vec<String> = self
            .settings
            .policy
            .tier_delays()
            .into_iter()
            .map(|d| self.delay_name(d))
            .collect();
        let mut queues: Vec<String> = self
            .known_queues
            .lock()
            .unwrap()
            .iter()
            .map(|rk| self.work_queue(rk))
            .collect();
        queues.extend(Stage::ALL.iter().map(|s| self.dlq(*s)));
        queues.extend(delays.iter().cloned());
        let mut exchanges = vec![self.work_exchange(), self.dlx()];
        exchanges.extend(delays);
        // A failed delete (already gone on an older broker) closes the channel: reopen it.
        let mut ch: Option<Channel> = None;
        for (is_queue, name) in queues
            .iter()
            .map(|q| (true, q))
            .chain(exchanges.iter().map(|x| (false, x)))
        {
            let c = match &ch {
                Some(c) if c.status().connected() => c.clone(),
                _ => {
                    let c = conn
                        .connection
                        .create_channel()
                        .await
                        .map_err(|err| e("opening a channel to delete the topology", err))?;
                    ch = Some(c.clone());
                    c
                }
            };
            let r = if is_queue {
                c.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map(|_| ())
            } else {
                c.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await
            };
            if let Err(err) = r {
                if !conn.alive() {
                    return Err(e(format!("deleting {name}"), err));
                }
                tracing::debug!(%name, error = %err, "delete failed (already gone?)");
            }
        }
        if let Some(c) = ch {
            let _ = c.close(200, "topology deleted".into()).await;
        }
        self.known_queues.lock().unwrap().clear();
        conn.declared.lock().unwrap().clear();
        Ok(())
    }
}
