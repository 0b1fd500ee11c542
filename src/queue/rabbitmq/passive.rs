//! Passive declares: the ready count and consumers of a queue, read over AMQP (the way
//! statistics are read without the management API), on a connection of their own.

use super::{e, Inner};
use crate::queue::Result;
use futures_util::future::join_all;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Passive declares in flight at once (each on its own channel): enough to hide the round
/// trip, few enough not to flood the broker with channels.
pub(crate) const DECLARE_PARALLEL: usize = 16;

/// Opens of a stats channel retried on a live connection (a lane's 404 can fail the next).
const CHANNEL_REOPENS: u64 = 4;
/// How long a replaced statistics connection is left to the reads still using it.
const RETIRE_AFTER: Duration = Duration::from_secs(60);

/// The connection passive declares use, apart from the publishing one. A passive declare of
/// a queue not declared yet (a business without traffic, a stage never reached) is answered
/// by the broker closing the channel (404), and lapin 4.12 never frees the channel slot of a
/// channel the broker closed: after `channel_max` such misses (2,047 by default, 15 s of a
/// console on six quiet businesses) the connection can open no channel at all, and the
/// broker looked down for good. So statistics have their own connection, replaced once half
/// its slots are spent; a miss never costs the publishers a slot.
pub(super) struct StatsConn {
    connection: Connection,
    /// Channel slots spent on this connection (channels the broker closed).
    spent: AtomicU64,
    /// Slots it may spend before it is replaced.
    budget: u64,
}

impl StatsConn {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.spent.load(Ordering::Relaxed) < self.budget
    }

    fn alive(&self) -> bool {
        self.connection.status().connected()
    }

    /// Spend the rest of its budget: the next open takes a fresh connection.
    fn exhaust(&self) {
        self.spent.store(self.budget, Ordering::Relaxed);
    }
}

impl Inner {
    /// The statistics connection, a fresh one when the last is spent or gone. The one it
    /// replaces is closed once no read holds it (or after [`RETIRE_AFTER`]).
    async fn stats_conn(&self) -> Result<Arc<StatsConn>> {
        let mut slot = self.stats_cache.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.usable()) {
            return Ok(c.clone());
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(crate::queue::QueueError::Unavailable(format!(
                "the RabbitMQ broker at {} was closed",
                self.redacted_url()
            )));
        }
        let props = ConnectionProperties::default()
            .with_connection_name(format!("callops {} stats", self.settings.prefix).into());
        let connection = Connection::connect(&self.settings.amqp_url, props)
            .await
            .map_err(|err| {
                e(
                    format!(
                        "connecting to RabbitMQ at {} for queue statistics",
                        self.redacted_url()
                    ),
                    err,
                )
            })?;
        // 0 is "no limit" in AMQP; lapin's ids are 16 bits.
        let max = match connection.configuration().channel_max() {
            0 => u16::MAX,
            m => m,
        };
        let fresh = Arc::new(StatsConn {
            connection,
            spent: AtomicU64::new(0),
            budget: (u64::from(max) / 2).max(1),
        });
        self.stats_cache.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = slot.replace(fresh.clone()) {
            tokio::spawn(retire(old));
        }
        Ok(fresh)
    }

    /// Close the statistics connection (the broker is closing).
    pub(super) async fn close_stats_conn(&self) {
        let old = self.stats_cache.conn.lock().await.take();
        if let Some(old) = old {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                old.connection.close(200, "callops closing".into()),
            )
            .await;
        }
    }

    /// (ready messages, consumers) of each queue by passive declare; None for a queue that
    /// does not exist. Up to [`DECLARE_PARALLEL`] lanes, each with its own channel on the
    /// statistics connection, take the next queue in turn, so N queues cost about N / 16
    /// round trips. A missing queue closes its lane's channel (404): the lane opens another
    /// for its next queue, on a fresh connection once the last has spent its slots.
    pub(super) async fn passive_counts(
        &self,
        queues: &[String],
    ) -> Result<Vec<Option<(u64, u64)>>> {
        let next = AtomicUsize::new(0);
        let lane = || async {
            let mut got: Vec<(usize, Option<(u64, u64)>)> = Vec::new();
            let mut ch: Option<(Arc<StatsConn>, Channel)> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(q) = queues.get(i) else { break };
                let (conn, c) = match &ch {
                    Some((conn, c)) if c.status().connected() => (conn.clone(), c.clone()),
                    _ => {
                        // An open can fail on a live connection (lapin hands out a slot a
                        // 404 left behind): that connection is spent; a few tries on a
                        // fresh one before calling the broker down.
                        let mut attempt = 0;
                        let opened = loop {
                            let conn = self.stats_conn().await?;
                            match conn.connection.create_channel().await {
                                Ok(c) => break (conn, c),
                                Err(_) if conn.alive() && attempt < CHANNEL_REOPENS => {
                                    conn.exhaust();
                                    attempt += 1;
                                    tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                                }
                                Err(err) => return Err(e("opening a stats channel", err)),
                            }
                        };
                        ch = Some(opened.clone());
                        opened
                    }
                };
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                self.stats_cache.declares.fetch_add(1, Ordering::Relaxed);
                match c
                    .queue_declare(q.as_str().into(), passive, FieldTable::default())
                    .await
                {
                    Ok(info) => got.push((
                        i,
                        Some((info.message_count() as u64, info.consumer_count() as u64)),
                    )),
                    Err(err) if !conn.alive() => {
                        return Err(e(format!("reading the depth of {q}"), err));
                    }
                    Err(_) => {
                        // A missing queue closed this channel, whatever its status says yet,
                        // and its slot on the connection is gone.
                        conn.spent.fetch_add(1, Ordering::Relaxed);
                        ch = None;
                        got.push((i, None));
                    }
                }
            }
            if let Some((_, c)) = ch {
                if c.status().connected() {
                    let _ = c.close(200, "stats read".into()).await;
                }
            }
            Ok(got)
        };
        let lanes = DECLARE_PARALLEL.min(queues.len());
        let mut out = vec![None; queues.len()];
        for r in join_all((0..lanes).map(|_| lane())).await {
            for (i, v) in r? {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// Close a replaced statistics connection once the reads still using it are done.
async fn retire(old: Arc<StatsConn>) {
    let deadline = Instant::now() + RETIRE_AFTER;
    while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        old.connection
            .close(200, "statistics connection spent".into()),
    )
    .await;
}
