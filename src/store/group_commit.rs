//! Group commit of stage starts and stage results (issue 14). Under load, dozens of stage
//! runs start and finish at the same moment, and each paid its own statement, round trip
//! and commit. Here every start and every result goes to a lane; a lane takes whatever
//! is waiting (up to `MAX_BATCH`) and writes it together:
//! - starts on Postgres: one multi-row `UPDATE … FROM (VALUES …)` with the trace rows and
//!   the transcripts, one statement and one commit for the whole batch;
//! - results: one transaction holding each result's statement, one commit for the batch.
//!
//! A lone request is written exactly as before (no batch of one), so an idle system
//! behaves as it did. A batch that fails as a whole (a deadlock, a constraint one member
//! broke, a connection cut) is not an answer for its members: each is then written on
//! its own and gets its own result, so one bad member never fails the others, and a
//! member the batch did commit finds its lease gone and is told so (`Conflict`: its work
//! is in, its delivery is a duplicate).

use super::calls::StartedRun;
use super::stage_commit::{StageCommitOwned, StageCommitted};
use super::{Result, Store};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The most requests one batch writes.
pub const MAX_BATCH: usize = 64;
/// Batches of one lane in flight at once: one is being written while the next gathers.
const PARALLEL: usize = 2;

/// A stage start: move the call to running under the run's lease (see
/// `Store::start_call_reading`).
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub call_id: i64,
    pub business_id: i64,
    pub stage: crate::domain::stage::Stage,
    pub token: i64,
    pub lease_until: i64,
    pub reason: String,
    /// Read the call's transcript with the start (Postgres; transcribe, analyze, link).
    pub with_transcript: bool,
    /// Read the call's intent and record with the start (sync, link).
    pub with_record: bool,
}

/// A started run, or None: the call was not waiting at the stage for this run.
pub type Started = Option<StartedRun>;

type Pending<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// One lane: a task that gathers requests into batches and hands each batch to `write`.
pub struct Lane<Req, Resp> {
    tx: mpsc::UnboundedSender<Pending<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Lane<Req, Resp> {
    /// Start the lane's task on the current runtime. It ends when the lane is dropped.
    pub fn spawn<W, Fut>(write: W) -> Lane<Req, Resp>
    where
        W: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending<Req, Resp>>();
        let write = Arc::new(write);
        let slots = Arc::new(Semaphore::new(PARALLEL));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = rx.recv().await else { return };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let (reqs, replies): (Vec<Req>, Vec<oneshot::Sender<Resp>>) =
                    batch.into_iter().unzip();
                let write = write.clone();
                tokio::spawn(async move {
                    let out = write(reqs).await;
                    debug_assert_eq!(out.len(), replies.len());
                    for (reply, r) in replies.into_iter().zip(out) {
                        let _ = reply.send(r);
                    }
                    drop(slot);
                });
            }
        });
        Lane { tx }
    }

    /// Write `req` with whatever else is waiting. `Err(req)` when the lane's task is gone
    /// (its runtime ended): the caller writes it itself.
    pub async fn submit(&self, req: Req) -> std::result::Result<Resp, ()> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send((req, reply)).is_err() {
            return Err(());
        }
        answer.await.map_err(|_| ())
    }
}

/// Cached agent results by cache key (see `Store::cached_analyses`).
type CachedResults = std::collections::HashMap<String, String>;

/// The lanes of one store.
pub struct Lanes {
    starts: Lane<StartRequest, Result<Started>>,
    results: Lane<StageCommitOwned, Result<StageCommitted>>,
    /// Analysis cache lookups: a read, batched the same way (one statement per batch).
    cache_reads: Lane<Vec<String>, Result<CachedResults>>,
}

impl Store {
    /// A clone for a lane's task: the same pool, no lanes of its own (so the task does not
    /// keep the lanes, and itself, alive after the last store is dropped).
    fn for_lane(&self) -> Store {
        Store {
            lanes: Default::default(),
            ..self.clone()
        }
    }

    fn lanes(&self) -> &Lanes {
        self.lanes.get_or_init(|| {
            let s = self.for_lane();
            let r = self.for_lane();
            let c = self.for_lane();
            Lanes {
                cache_reads: Lane::spawn(move |keys| {
                    let c = c.clone();
                    async move { c.cached_analyses_batch(keys).await }
                }),
                starts: Lane::spawn(move |reqs| {
                    let s = s.clone();
                    async move { s.start_calls(reqs).await }
                }),
                results: Lane::spawn(move |cs| {
                    let r = r.clone();
                    async move { r.commit_stage_results(cs).await }
                }),
            }
        })
    }

    /// Start a stage run with the others starting now (see the module doc).
    pub async fn start_call_grouped(&self, req: StartRequest) -> Result<Started> {
        let fallback = req.clone();
        match self.lanes().starts.submit(req).await {
            Ok(r) => r,
            Err(()) => self.start_run(&fallback).await,
        }
    }

    /// Commit a stage result with the others finishing now (see the module doc).
    pub async fn commit_stage_result_grouped(&self, c: StageCommitOwned) -> Result<StageCommitted> {
        let fallback = c.clone();
        match self.lanes().results.submit(c).await {
            Ok(r) => r,
            Err(()) => self.commit_stage_result(&fallback.as_commit()).await,
        }
    }

    /// `cached_analyses` with the lookups of the other runs asking now: one statement for
    /// the batch.
    pub async fn cached_analyses_grouped(&self, keys: Vec<String>) -> Result<CachedResults> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let fallback = keys.clone();
        match self.lanes().cache_reads.submit(keys).await {
            Ok(r) => r,
            Err(()) => self.cached_analyses(&fallback).await,
        }
    }

    /// Lookups of a batch in one read of their keys together; each gets its own keys' hits.
    /// A failed read is retried per lookup, so each gets its own answer or error.
    pub async fn cached_analyses_batch(
        &self,
        lookups: Vec<Vec<String>>,
    ) -> Vec<Result<CachedResults>> {
        if lookups.len() > 1 {
            let mut all: Vec<String> = lookups.iter().flatten().cloned().collect();
            all.sort();
            all.dedup();
            match self.cached_analyses(&all).await {
                Ok(hits) => {
                    return lookups
                        .iter()
                        .map(|keys| {
                            Ok(keys
                                .iter()
                                .filter_map(|k| hits.get(k).map(|v| (k.clone(), v.clone())))
                                .collect())
                        })
                        .collect()
                }
                Err(e) => tracing::debug!(error = %e, n = lookups.len(),
                    "a batch of analysis cache lookups failed: reading each on its own"),
            }
        }
        let mut out = Vec::with_capacity(lookups.len());
        for keys in &lookups {
            out.push(self.cached_analyses(keys).await);
        }
        out
    }

    /// Starts of a batch: one statement on Postgres, three on SQLite (`start_batch.rs`).
    pub async fn start_calls(&self, reqs: Vec<StartRequest>) -> Vec<Result<Started>> {
        if reqs.len() > 1 {
            let batch = match self.dialect {
                super::Dialect::Postgres => self.start_calls_pg(&reqs).await,
                super::Dialect::Sqlite => self.start_calls_sqlite(&reqs).await,
            };
            match batch {
                Ok(started) => return started.into_iter().map(Ok).collect(),
                Err(e) => tracing::debug!(error = %e, n = reqs.len(),
                    "a batch of stage starts failed as a whole: starting each on its own"),
            }
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in &reqs {
            out.push(self.start_run(r).await);
        }
        out
    }

    /// Results of a batch in one transaction (`commit_stage_batch`). A call in the batch
    /// twice (a redelivery's run beside the run that holds it) is committed after it, on
    /// its own.
    pub async fn commit_stage_results(
        &self,
        cs: Vec<StageCommitOwned>,
    ) -> Vec<Result<StageCommitted>> {
        let mut out: Vec<Option<Result<StageCommitted>>> = (0..cs.len()).map(|_| None).collect();
        if cs.len() > 1 {
            let mut seen = std::collections::HashSet::new();
            let (first, _): (Vec<usize>, Vec<usize>) =
                (0..cs.len()).partition(|&i| seen.insert(cs[i].call_id));
            let mut order = first;
            order.sort_by_key(|&i| (cs[i].business_id, cs[i].stage, cs[i].call_id));
            let batch: Vec<&StageCommitOwned> = order.iter().map(|&i| &cs[i]).collect();
            match self.commit_stage_batch(&batch).await {
                Ok(done) => {
                    for (i, r) in order.into_iter().zip(done) {
                        out[i] = Some(r);
                    }
                }
                Err(e) => tracing::debug!(error = %e, n = cs.len(),
                    "a batch of stage results failed as a whole: committing each on its own"),
            }
        }
        let mut done = Vec::with_capacity(cs.len());
        for (c, r) in cs.iter().zip(out) {
            done.push(match r {
                Some(r) => r,
                None => self.commit_stage_result(&c.as_commit()).await,
            });
        }
        done
    }
}
