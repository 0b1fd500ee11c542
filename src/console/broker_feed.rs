//! The broker's side of the console, off the refresh's critical path. A background task
//! reads queue statistics (passive declares, or the management API when it is enabled) and
//! RabbitMQ's unarchived dead letters on its own cadence, and keeps, per business, the last
//! figures read and when they were read. A refresh then costs the database queries plus a
//! merge with these figures: it never waits on the broker, except for businesses whose
//! queues were never read yet (the first screen, a scroll to new rows, a business opened),
//! and then only up to the refresh timeout. The figures carry their time, so the screen
//! says how old they are; a failing broker keeps the last figures (ageing, visibly) and its
//! error.

use crate::queue::{Broker, QueueStat};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Latencies kept for `poll_latencies` (benchmarks read them).
const KEEP_LATENCIES: usize = 4096;

/// One business's queues as last read.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// Its work queues (one per stage).
    pub queues: Vec<QueueStat>,
    /// When the read that produced them started (epoch ms): their age counts from there.
    pub at: i64,
}

/// How the last poll went.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    Ok { finished_at: i64, latency_ms: i64 },
    Failed { error: String, since: i64 },
}

/// What the feed knows.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    pub by_business: HashMap<i64, Read>,
    /// Dead letters RabbitMQ holds that are not archived into `dead_jobs` yet, and when read.
    pub dlx_unarchived: Option<(u64, i64)>,
    pub last: Option<Poll>,
    pub polls: u64,
}

struct Shared {
    /// The businesses whose queues to read; `None`: no view shows queue figures now.
    want: Mutex<Option<Vec<i64>>>,
    /// `want` was said at least once: the first poll waits for it (it would read nothing
    /// the first refresh needs otherwise).
    told: std::sync::atomic::AtomicBool,
    state: Mutex<FeedState>,
    /// Wakes the poller early (new businesses wanted).
    wake: Notify,
    /// Signalled after every poll.
    polled: Notify,
    latencies: Mutex<Vec<Duration>>,
    stop: std::sync::atomic::AtomicBool,
}

/// The background reader; dropping it stops its task.
pub struct BrokerFeed {
    shared: Arc<Shared>,
    kind: &'static str,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for BrokerFeed {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl BrokerFeed {
    /// Start reading `broker` every `period` (a poll slower than that is followed by the
    /// next at once); each poll is bounded by `timeout`.
    pub fn spawn(broker: Arc<dyn Broker>, period: Duration, timeout: Duration) -> BrokerFeed {
        let shared = Arc::new(Shared {
            want: Mutex::new(None),
            state: Mutex::new(FeedState::default()),
            wake: Notify::new(),
            polled: Notify::new(),
            latencies: Mutex::new(Vec::new()),
            stop: std::sync::atomic::AtomicBool::new(false),
            told: std::sync::atomic::AtomicBool::new(false),
        });
        let kind = broker.kind();
        let task = tokio::spawn(poll_loop(broker, shared.clone(), period, timeout));
        BrokerFeed {
            shared,
            kind,
            task: Some(task),
        }
    }

    /// Stop after the poll in flight (if any) and wait for it: every poll counted in
    /// `state().polls` is then whole (benchmarks divide costs by it).
    pub async fn stop(mut self) -> FeedState {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shared.wake.notify_one();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.state()
    }

    /// The console's cadence: twice per refresh interval, at most once per 250 ms and at
    /// least once per second (the management API samples every 5 s anyway).
    pub fn period_for(refresh_ms: u64) -> Duration {
        Duration::from_millis((refresh_ms / 2).clamp(250, 1000))
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Ask for these businesses' queues from now on (`None`: none); wakes the poller when
    /// some were never read.
    pub fn want(&self, businesses: Option<Vec<i64>>) {
        let unread = self.unread(businesses.as_deref().unwrap_or(&[]));
        let mut w = lock(&self.shared.want);
        if !self
            .shared
            .told
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            *w = businesses;
            self.shared.wake.notify_one();
        } else if *w != businesses {
            *w = businesses;
            if !unread.is_empty() {
                self.shared.wake.notify_one();
            }
        }
    }

    /// The businesses of `ids` whose queues were never read.
    pub fn unread(&self, ids: &[i64]) -> Vec<i64> {
        self.read_before(ids, i64::MIN)
    }

    /// The businesses of `ids` whose queues were not read since `since` (epoch ms).
    pub fn read_before(&self, ids: &[i64], since: i64) -> Vec<i64> {
        let s = lock(&self.shared.state);
        ids.iter()
            .copied()
            .filter(|b| s.by_business.get(b).is_none_or(|r| r.at < since))
            .collect()
    }

    /// Wait until every business of `ids` has been read since `since` (epoch ms; once at
    /// all with `i64::MIN`), or a poll failed, or `limit` passed; true when they all were.
    pub async fn wait_for(&self, ids: &[i64], since: i64, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let polled = self.shared.polled.notified();
            tokio::pin!(polled);
            polled.as_mut().enable();
            if self.read_before(ids, since).is_empty()
                && lock(&self.shared.state).dlx_unarchived.is_some()
            {
                return true;
            }
            if let Some(Poll::Failed { .. }) = lock(&self.shared.state).last {
                // Do not wait for a broker that is down: show the database's data now.
                return false;
            }
            if tokio::time::timeout_at(deadline, polled).await.is_err() {
                return false;
            }
        }
    }

    /// A copy of what the feed knows now.
    pub fn state(&self) -> FeedState {
        lock(&self.shared.state).clone()
    }

    /// The latency of every poll so far (the last few thousand), oldest first.
    pub fn poll_latencies(&self) -> Vec<Duration> {
        lock(&self.shared.latencies).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn poll_loop(
    broker: Arc<dyn Broker>,
    shared: Arc<Shared>,
    period: Duration,
    limit: Duration,
) {
    while !shared.told.load(std::sync::atomic::Ordering::Relaxed)
        && !shared.stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        shared.wake.notified().await;
    }
    while !shared.stop.load(std::sync::atomic::Ordering::Relaxed) {
        let want = lock(&shared.want).clone();
        let started = tokio::time::Instant::now();
        let started_at = crate::now_ms();
        let read = async {
            let stats = async {
                match &want {
                    // An empty list asks for every active business (the first refresh,
                    // before the database has said which there are).
                    Some(ids) => broker.queue_stats(ids).await.map(Some),
                    None => Ok(None),
                }
            };
            // Asked together: each costs about one round trip (or one API request).
            let (stats, dlx) = tokio::join!(stats, broker.unarchived_dead_letters());
            let stats = match stats {
                // Asking for every business lists them from the database first: the
                // database failing is not the broker failing (the header says which).
                Err(crate::queue::QueueError::Store(_)) if dlx.is_ok() => None,
                other => other?,
            };
            Ok::<_, crate::queue::QueueError>((stats, dlx?))
        };
        let answer = match tokio::time::timeout(limit, read).await {
            Ok(Ok(v)) if broker.is_connected() => Ok(v),
            Ok(Ok(_)) => Err("not connected (reconnecting in the background)".to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the broker did not answer within {} s",
                limit.as_secs_f64()
            )),
        };
        let took = started.elapsed();
        {
            let mut s = lock(&shared.state);
            s.polls += 1;
            match answer {
                Ok((stats, dlx)) => {
                    if let (Some(ids), Some(stats)) = (&want, stats) {
                        let mut per: HashMap<i64, Vec<QueueStat>> =
                            ids.iter().map(|b| (*b, Vec::new())).collect();
                        for q in stats {
                            match q.business_id {
                                Some(b) if ids.is_empty() => per.entry(b).or_default().push(q),
                                Some(b) => {
                                    if let Some(v) = per.get_mut(&b) {
                                        v.push(q);
                                    }
                                }
                                None => {}
                            }
                        }
                        for (b, queues) in per {
                            // The oldest figure of the business (a shared management API
                            // answer can predate this poll).
                            let at = queues
                                .iter()
                                .filter_map(|q| q.read_at)
                                .min()
                                .unwrap_or(started_at)
                                .min(started_at);
                            s.by_business.insert(b, Read { queues, at });
                        }
                    }
                    s.dlx_unarchived = Some((dlx.iter().map(|q| q.depth).sum(), started_at));
                    s.last = Some(Poll::Ok {
                        finished_at: crate::now_ms(),
                        latency_ms: took.as_millis() as i64,
                    });
                }
                Err(error) => {
                    let since = match &s.last {
                        Some(Poll::Failed { since, .. }) => *since,
                        _ => {
                            // Logged when the broker turns down (not every failed poll):
                            // the header shows DOWN, the log says why.
                            tracing::warn!(%error, "reading the broker's queue statistics failed");
                            started_at
                        }
                    };
                    s.last = Some(Poll::Failed { error, since });
                }
            }
        }
        {
            let mut l = lock(&shared.latencies);
            if l.len() >= KEEP_LATENCIES {
                l.remove(0);
            }
            l.push(took);
        }
        shared.polled.notify_waiters();
        // Wanted businesses never read: poll again at once; otherwise at the cadence.
        let unread = {
            let w = lock(&shared.want);
            let s = lock(&shared.state);
            w.as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|b| !s.by_business.contains_key(b))
        };
        let last_ok = matches!(lock(&shared.state).last, Some(Poll::Ok { .. }));
        if unread && last_ok {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(started + period) => {}
            _ = shared.wake.notified() => {}
        }
    }
}
