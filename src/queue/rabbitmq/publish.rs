//! Publishing: confirmed, persistent, `mandatory` publishes in group-commit rounds, one
//! task per confirm channel, and the message properties and headers a job travels with.

use super::{e, long_string, Conn, Inner, RECONNECT_WAIT};
use crate::queue::{Job, QueueError, Result};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Confirm channels per connection; publishes round-robin over them.
const PUBLISH_CHANNELS: usize = 4;

/// Messages one publish round may carry on one channel before its confirms are awaited
/// (also the confirm window of the raw lapin baseline in `bench::raw_lapin`).
pub(crate) const MAX_ROUND: usize = 2000;

/// Jobs of one `publish_many` handed to one channel at a time (spreads big batches).
const CHUNK: usize = 1000;

/// A confirm that has not arrived by then is reported as not confirmed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) const H_JOB: &str = "x-callops-job-id";
pub(super) const H_BUSINESS: &str = "x-callops-business";
pub(super) const H_STAGE: &str = "x-callops-stage";
pub(super) const H_CALL: &str = "x-callops-call";
pub(super) const H_ATTEMPTS: &str = "x-callops-attempts";
pub(super) const H_ERRORS: &str = "x-callops-errors";
pub(super) const H_FIRST: &str = "x-callops-first-enqueued";

impl Inner {
    /// Publish `jobs` to `exchange` with their own routing keys; Ok once every one is confirmed.
    /// Jobs left unconfirmed by a lost connection are published again on the next one
    /// (a duplicate is possible, a loss is not).
    pub(super) async fn publish(&self, exchange: &str, jobs: &[Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + RECONNECT_WAIT;
        let mut pending: Vec<&Job> = jobs.iter().collect();
        loop {
            let conn = self.live_conn(deadline).await?;
            let keys: BTreeSet<String> = pending.iter().map(|j| j.queue()).collect();
            if let Err(err) = self.ensure_declared(&conn, &keys).await {
                if !conn.alive() && Instant::now() < deadline {
                    continue;
                }
                return Err(err);
            }
            let results = conn.publish(exchange, &pending).await;
            let failed: Vec<(&Job, PublishFail)> = pending
                .iter()
                .zip(results)
                .filter_map(|(j, r)| r.err().map(|f| (*j, f)))
                .collect();
            if failed.is_empty() {
                return Ok(());
            }
            for (job, fail) in &failed {
                if let PublishFail::Unroutable(_) = fail {
                    // Its queue vanished behind our back: declare it again next time.
                    conn.declared.lock().unwrap().remove(&job.queue());
                }
            }
            if !conn.alive() && Instant::now() < deadline && !self.closed.load(Ordering::Relaxed) {
                tracing::warn!(
                    unconfirmed = failed.len(),
                    "RabbitMQ connection lost mid-publish; publishing the unconfirmed jobs again after the reconnect"
                );
                pending = failed.into_iter().map(|(j, _)| j).collect();
                continue;
            }
            let (job, fail) = &failed[0];
            let more = if failed.len() > 1 {
                format!(
                    " ({} more of {} jobs not confirmed)",
                    failed.len() - 1,
                    jobs.len()
                )
            } else {
                String::new()
            };
            return Err(QueueError::NotConfirmed {
                job_id: job.id.clone(),
                queue: format!("{exchange} → {}", job.queue()),
                reason: format!("{fail}{more}"),
            });
        }
    }
}

fn properties(job: &Job) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(H_JOB.into(), long_string(job.id.clone()));
    h.insert(H_BUSINESS.into(), AMQPValue::LongLongInt(job.business_id));
    h.insert(H_STAGE.into(), long_string(job.stage.as_str()));
    if let Some(c) = job.call_id {
        h.insert(H_CALL.into(), AMQPValue::LongLongInt(c));
    }
    h.insert(
        H_ATTEMPTS.into(),
        AMQPValue::LongLongInt(job.attempts as i64),
    );
    h.insert(
        H_ERRORS.into(),
        long_string(serde_json::to_string(&job.errors).expect("errors serialize")),
    );
    h.insert(
        H_FIRST.into(),
        AMQPValue::LongLongInt(job.first_enqueued_at),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(job.id.as_str().into())
        // Seconds: the management API's head_message_timestamp reads this.
        .with_timestamp((crate::now_ms() / 1000) as u64)
        .with_headers(h)
}

// ---------------------------------------------------------------------------------------
// Publishing: one group-commit task per confirm channel.
//
// Why a task owns each channel: lapin hands a `basic.return` (unroutable mandatory
// message) to whichever confirm of the channel completes next, not to the message's own
// confirm (and with `multiple` acks the order is a HashMap's). So returns are attributed
// by message id, and only the owner of *every* pending confirm of a channel can do that
// reliably: the task publishes a round, awaits all of its confirms, then matches returns.

struct OutMsg {
    routing_key: String,
    job_id: String,
    body: Vec<u8>,
    props: BasicProperties,
}

pub(super) struct PublishRound {
    exchange: String,
    msgs: Vec<OutMsg>,
    reply: oneshot::Sender<Vec<Result<(), PublishFail>>>,
}

#[derive(Debug, Clone)]
enum PublishFail {
    /// Returned by the broker: no queue is bound for the routing key.
    Unroutable(String),
    Failed(String),
}

impl std::fmt::Display for PublishFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishFail::Unroutable(why) => write!(f, "unroutable, returned by the broker: {why}"),
            PublishFail::Failed(why) => f.write_str(why),
        }
    }
}

impl Conn {
    /// Hand `jobs` to the publisher channels (in chunks, round-robin) and wait for every
    /// outcome, in the order of `jobs`.
    async fn publish(&self, exchange: &str, jobs: &[&Job]) -> Vec<Result<(), PublishFail>> {
        let mut waits = Vec::new();
        for chunk in jobs.chunks(CHUNK) {
            let msgs = chunk
                .iter()
                .map(|j| OutMsg {
                    routing_key: j.queue(),
                    job_id: j.id.clone(),
                    body: j.payload.to_string().into_bytes(),
                    props: properties(j),
                })
                .collect();
            let (reply, rx) = oneshot::channel();
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.publishers.len();
            let sent = self.publishers[i]
                .send(PublishRound {
                    exchange: exchange.to_string(),
                    msgs,
                    reply,
                })
                .await
                .is_ok();
            waits.push((chunk.len(), sent, rx));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for (n, sent, rx) in waits {
            let res = if sent { rx.await.ok() } else { None };
            match res {
                Some(r) => out.extend(r),
                None => out.extend((0..n).map(|_| {
                    Err(PublishFail::Failed(
                        "the publisher channel stopped (connection lost)".into(),
                    ))
                })),
            }
        }
        out
    }
}

async fn open_confirm_channel(connection: &Connection) -> Result<Channel> {
    let ch = connection
        .create_channel()
        .await
        .map_err(|err| e("opening a publisher channel", err))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|err| e("enabling publisher confirms", err))?;
    Ok(ch)
}

async fn publisher_task(
    connection: Arc<Connection>,
    mut ch: Channel,
    mut rx: mpsc::Receiver<PublishRound>,
) {
    while let Some(first) = rx.recv().await {
        let mut rounds = vec![first];
        let mut n = rounds[0].msgs.len();
        while n < MAX_ROUND {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.msgs.len();
                    rounds.push(r);
                }
                Err(_) => break,
            }
        }
        // A channel-level error (say a publish to a missing exchange) closes only this
        // channel: open a fresh one instead of failing every later publish.
        if !ch.status().connected() && connection.status().connected() {
            match open_confirm_channel(&connection).await {
                Ok(c) => ch = c,
                Err(err) => tracing::warn!(error = %err, "reopening a publisher channel failed"),
            }
        }
        let results = publish_round(&ch, &rounds).await;
        for (round, res) in rounds.into_iter().zip(results) {
            let _ = round.reply.send(res);
        }
    }
    let _ = ch.close(200, "publisher done".into()).await;
}

/// Publish every message of `rounds`, then await all their confirms together.
async fn publish_round(ch: &Channel, rounds: &[PublishRound]) -> Vec<Vec<Result<(), PublishFail>>> {
    let mut sent = Vec::new();
    let mut broken: Option<String> = None;
    for (r, round) in rounds.iter().enumerate() {
        for m in &round.msgs {
            let confirm = match &broken {
                Some(why) => Err(why.clone()),
                None => ch
                    .basic_publish(
                        round.exchange.as_str().into(),
                        m.routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &m.body,
                        m.props.clone(),
                    )
                    .await
                    .map_err(|err| {
                        let why = format!("sending on the publisher channel failed: {err}");
                        broken = Some(why.clone());
                        why
                    }),
            };
            sent.push((r, confirm));
        }
    }
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    let outcomes = futures_util::future::join_all(sent.into_iter().map(|(r, c)| async move {
        let outcome = match c {
            Err(why) => Err(why),
            Ok(c) => match tokio::time::timeout_at(deadline, c).await {
                Err(_) => Err(format!("no confirm within {} s", CONFIRM_TIMEOUT.as_secs())),
                Ok(Err(err)) => Err(format!("confirm failed: {err}")),
                Ok(Ok(conf)) => Ok(conf),
            },
        };
        (r, outcome)
    }))
    .await;

    // Returns ride on arbitrary confirms of the round: collect them all first.
    let mut returned_ids: HashMap<String, String> = HashMap::new();
    let mut returned_keys: HashMap<(String, String), String> = HashMap::new();
    let mut verdicts = Vec::with_capacity(outcomes.len());
    for (r, outcome) in outcomes {
        let verdict = match outcome {
            Err(why) => Err(PublishFail::Failed(why)),
            Ok(conf) => {
                let acked = conf.is_ack();
                let not_requested = matches!(conf, Confirmation::NotRequested);
                if let Some(ret) = conf.take_message() {
                    let why = format!("{} {}", ret.reply_code, ret.reply_text.as_str());
                    match ret.delivery.properties.message_id() {
                        Some(id) => {
                            returned_ids.insert(id.as_str().to_string(), why);
                        }
                        None => {
                            returned_keys.insert(
                                (
                                    ret.delivery.exchange.as_str().to_string(),
                                    ret.delivery.routing_key.as_str().to_string(),
                                ),
                                why,
                            );
                        }
                    }
                }
                if acked {
                    Ok(())
                } else if not_requested {
                    Err(PublishFail::Failed(
                        "publisher confirms are not enabled on the channel".into(),
                    ))
                } else {
                    Err(PublishFail::Failed("the broker nacked it".into()))
                }
            }
        };
        verdicts.push((r, verdict));
    }
    let mut out: Vec<Vec<Result<(), PublishFail>>> = rounds
        .iter()
        .map(|r| Vec::with_capacity(r.msgs.len()))
        .collect();
    let mut msgs = rounds
        .iter()
        .flat_map(|r| r.msgs.iter().map(move |m| (r, m)));
    for (r, verdict) in verdicts {
        let (round, m) = msgs.next().expect("one verdict per message");
        let returned = returned_ids
            .get(&m.job_id)
            .or_else(|| returned_keys.get(&(round.exchange.clone(), m.routing_key.clone())));
        out[r].push(match (verdict, returned) {
            (Ok(()), Some(why)) => Err(PublishFail::Unroutable(why.clone())),
            (v, _) => v,
        });
    }
    out
}

/// One group-commit task per confirm channel of `connection`; their senders, to round-robin over.
pub(super) async fn open_publishers(
    connection: &Arc<Connection>,
) -> Result<Vec<mpsc::Sender<PublishRound>>> {
    let mut publishers = Vec::with_capacity(PUBLISH_CHANNELS);
    for _ in 0..PUBLISH_CHANNELS {
        let ch = open_confirm_channel(connection).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(publisher_task(connection.clone(), ch, rx));
        publishers.push(tx);
    }
    Ok(publishers)
}
