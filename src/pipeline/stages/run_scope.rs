//! What one stage run notes while it runs. A handler's trace rows ("caller number valid",
//! "link evidence", an agent's result) are kept here and written with the run's result, in
//! the statement that moves the call on — not one round trip each (issue 14). A run that
//! fails still leaves them (one multi-row insert before it settles); a run that lost its
//! lease leaves nothing, as the run that took the call over notes its own.

use crate::store::calls::CallRecord;
use crate::store::events::{NewEvent, PendingEvent};
use crate::store::stage_commit::CallField;
use crate::store::transcripts::{StoredAnalysis, StoredTranscript};
use crate::store::{Store, StoreError};
use std::future::Future;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static RUN: RunScope;
}

/// The link a run wrote: (status, method).
pub type LinkWritten = (String, Option<String>);

#[derive(Clone)]
pub struct RunScope {
    call_id: i64,
    kept: Arc<Mutex<Kept>>,
    /// The call's transcript as the run's start read it (None: not read then).
    transcript: Option<Arc<Option<StoredTranscript>>>,
    /// The call's intent and record as the run's start read them (None: not read then).
    record: Option<Arc<CallRecord>>,
    /// The link the run wrote (status, method), for the link stage's outcome metric.
    link: Arc<Mutex<Option<LinkWritten>>>,
}

/// What a run keeps for its result.
#[derive(Debug, Default)]
pub struct Kept {
    pub events: Vec<PendingEvent>,
    pub call_fields: Vec<CallField>,
    pub analyses: Vec<StoredAnalysis>,
    /// The transcript the run made.
    pub transcript: Option<StoredTranscript>,
}

impl Kept {
    /// Write what a run that did not commit its result had kept: the trace rows, the
    /// agents' results (the cache a retry reuses) and the call's columns.
    pub async fn write_now(&self, store: &Store, call_id: i64, business_id: i64) {
        let pool = store.pool();
        let _ = store
            .append_pending_events(pool, call_id, business_id, &self.events)
            .await;
        let _ = store.save_analyses_in(pool, call_id, &self.analyses).await;
        let _ = store.set_call_fields(call_id, &self.call_fields).await;
        if let Some(t) = &self.transcript {
            let _ = store.save_transcript(t).await;
        }
    }
}

impl RunScope {
    pub fn new(call_id: i64) -> RunScope {
        RunScope {
            call_id,
            kept: Arc::default(),
            transcript: None,
            record: None,
            link: Arc::default(),
        }
    }

    /// A scope that hands out what the start read with the call (`Store::start_run`):
    /// the transcript, the record, instead of reading them again.
    pub fn with_start(
        call_id: i64,
        transcript: Option<Option<StoredTranscript>>,
        record: Option<CallRecord>,
    ) -> RunScope {
        RunScope {
            transcript: transcript.map(Arc::new),
            record: record.map(Arc::new),
            ..RunScope::new(call_id)
        }
    }

    /// Run `f` (the stage handler) with this scope: its notes land here.
    pub async fn scope<F: Future>(&self, f: F) -> F::Output {
        RUN.scope(self.clone(), f).await
    }

    /// What was kept so far; the scope is empty afterwards.
    pub fn take(&self) -> Kept {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The call's transcript: inside a run of it whose start read it, that one (a run writes
/// no transcript it reads afterwards); elsewhere from the store.
pub async fn transcript(
    store: &Store,
    call_id: i64,
) -> Result<Option<StoredTranscript>, StoreError> {
    let read = RUN
        .try_with(|run| {
            (run.call_id == call_id)
                .then(|| run.transcript.as_deref().cloned())
                .flatten()
        })
        .ok()
        .flatten();
    match read {
        Some(t) => Ok(t),
        None => store.transcript(call_id).await,
    }
}

/// The call's intent and record as the run's start read them (nothing changes them after
/// ingest); None outside such a run.
fn record_read(call_id: i64) -> Option<CallRecord> {
    RUN.try_with(|run| {
        (run.call_id == call_id)
            .then(|| run.record.as_deref().cloned())
            .flatten()
    })
    .ok()
    .flatten()
}

/// The call's intent and record as ingested: the start's read inside a run, else the store's.
pub async fn record(store: &Store, call_id: i64) -> Result<CallRecord, StoreError> {
    match record_read(call_id) {
        Some(r) => Ok(r),
        None => {
            let (_, intent, raw) = store.call_with_record(call_id).await?;
            Ok(CallRecord { intent, raw })
        }
    }
}

/// The call as the run's start left it (`call`) with its intent and record, when the start
/// read them; elsewhere all three read from the store now (`call` may be stale there).
pub async fn call_with_record(
    store: &Store,
    call: &crate::store::Call,
) -> Result<(crate::store::Call, Option<String>, String), StoreError> {
    match record_read(call.id) {
        Some(r) => Ok((call.clone(), r.intent, r.raw)),
        None => store.call_with_record(call.id).await,
    }
}

/// Note the link a run of `call_id` wrote (status, method): the link stage's outcome
/// metric reads it instead of reading the call again.
pub fn note_link(call_id: i64, status: &str, method: Option<&str>) {
    let _ = RUN.try_with(|run| {
        if run.call_id == call_id {
            *run.link.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((status.to_string(), method.map(str::to_string)));
        }
    });
}

/// The link the run of `call_id` noted (status, method); None outside such a run or
/// when it wrote none.
pub fn link_written(call_id: i64) -> Option<LinkWritten> {
    RUN.try_with(|run| {
        (run.call_id == call_id)
            .then(|| run.link.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .flatten()
    })
    .ok()
    .flatten()
}

/// Keep `f(kept)` in the run of `call_id`, if this is one; false elsewhere.
fn keep(call_id: i64, f: impl FnOnce(&mut Kept)) -> bool {
    RUN.try_with(|run| {
        if run.call_id != call_id {
            return false;
        }
        f(&mut run.kept.lock().unwrap_or_else(|p| p.into_inner()));
        true
    })
    .unwrap_or(false)
}

/// Set columns of the call: with the run's result inside a run, now elsewhere.
pub async fn set_call(
    store: &Store,
    call_id: i64,
    fields: Vec<CallField>,
) -> Result<(), StoreError> {
    let mut fields = Some(fields);
    if keep(call_id, |k| {
        for (col, v) in fields.take().into_iter().flatten() {
            // A later value for the same column replaces the earlier one.
            k.call_fields.retain(|(c, _)| *c != col);
            k.call_fields.push((col, v));
        }
    }) {
        return Ok(());
    }
    store
        .set_call_fields(call_id, &fields.unwrap_or_default())
        .await
}

/// Save the call's transcript: with the run's result inside a run of it, now elsewhere.
pub async fn save_transcript(store: &Store, t: StoredTranscript) -> Result<(), StoreError> {
    let mut t = Some(t);
    let call_id = t.as_ref().map_or(0, |t| t.call_id);
    if keep(call_id, |k| k.transcript = t.take()) {
        return Ok(());
    }
    match t {
        Some(t) => store.save_transcript(&t).await,
        None => Ok(()),
    }
}

/// Save an agent's result: with the run's result inside a run, now elsewhere.
pub async fn save_analysis(store: &Store, a: StoredAnalysis) -> Result<(), StoreError> {
    let mut a = Some(a);
    let call_id = a.as_ref().map_or(0, |a| a.call_id);
    if keep(call_id, |k| k.analyses.extend(a.take())) {
        return Ok(());
    }
    match a {
        Some(a) => store.save_analyses_in(store.pool(), a.call_id, &[a]).await,
        None => Ok(()),
    }
}

/// Note a trace row: inside a stage run of the same call it is written with the run's
/// result; anywhere else it is written now.
pub async fn note(store: &Store, ev: &NewEvent<'_>) -> Result<(), StoreError> {
    if keep(ev.call_id, |k| k.events.push(PendingEvent::of(ev))) {
        return Ok(());
    }
    store.append_event(store.pool(), ev).await
}
