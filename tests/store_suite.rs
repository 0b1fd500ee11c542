//! One store suite, run against SQLite and against Postgres (a unique database per test).

#[macro_use]
mod common;

use callops::domain::stage::{CallState, Position, Stage};
use callops::queue::{AttemptError, Job};
use callops::store::calls::Move;
use callops::store::{DeadJobFilter, DeadJobInsert, DeadJobStatus, NewCall, Store, StoreError};

both_stores!(
    migrate_twice_is_a_no_op,
    duplicate_ingest_returns_existing_and_changes_nothing,
    legal_moves_write_the_trace,
    illegal_transition_is_refused_and_changes_nothing,
    stale_expectation_is_a_conflict,
    concurrent_ingest_of_the_same_call_creates_one,
    dead_jobs_insert_is_idempotent_and_filters_work,
    dead_jobs_retry_and_discard_keep_history,
    stuck_calls_respect_stage_sla,
    throughput_buckets_add_up,
    review_queue_orders_by_priority_then_age,
    a_start_can_bring_the_transcript,
    a_lead_counts_each_call_once_however_often_it_is_written,
);

fn new_call(business_id: i64, ext: &str) -> NewCall {
    NewCall {
        business_id,
        external_id: ext.into(),
        direction: "inbound".into(),
        from_number: Some("+4930123456".into()),
        duration_ms: 61_000,
        raw: format!("{{\"id\":\"{ext}\"}}"),
        ..Default::default()
    }
}

fn mv(to: Position, reason: &str) -> Move<'static> {
    Move {
        to,
        expect: None,
        kind: "test",
        reason: reason.into(),
        error: None,
        actor: "test",
    }
}

async fn migrate_twice_is_a_no_op(store: Store) {
    assert!(store.migrate().await.unwrap().is_empty());
}

async fn duplicate_ingest_returns_existing_and_changes_nothing(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (first, created) = store.ingest_call(&new_call(b.id, "c-1")).await.unwrap();
    assert!(created);
    assert_eq!(
        first.position(),
        Position::new(Stage::Sync, CallState::Pending)
    );
    let mut changed = new_call(b.id, "c-1");
    changed.from_number = Some("anonymous".into());
    changed.duration_ms = 5;
    let (again, created) = store.ingest_call(&changed).await.unwrap();
    assert!(!created);
    assert_eq!(
        again, first,
        "a duplicate must return the existing call unchanged"
    );
    assert_eq!(
        store.call_events(first.id).await.unwrap().len(),
        1,
        "no second 'ingested' event"
    );
    // Same external id at another business is another call.
    let other = store.ensure_business("globex").await.unwrap();
    let (c2, created) = store.ingest_call(&new_call(other.id, "c-1")).await.unwrap();
    assert!(created);
    assert_ne!(c2.id, first.id);
}

async fn legal_moves_write_the_trace(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (c, _) = store.ingest_call(&new_call(b.id, "c-2")).await.unwrap();
    let c = store
        .move_call(
            c.id,
            &mv(Position::new(Stage::Sync, CallState::Running), "claimed"),
        )
        .await
        .unwrap();
    assert_eq!(c.attempts, 1);
    let c = store
        .move_call(
            c.id,
            &mv(
                Position::new(Stage::Transcribe, CallState::Pending),
                "synced",
            ),
        )
        .await
        .unwrap();
    assert_eq!(c.attempts, 0, "attempts count per stage");
    let trace = store.call_events(c.id).await.unwrap();
    let reasons: Vec<_> = trace.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["call record \"c-2\" received", "claimed", "synced"]
    );
    assert!(trace.windows(2).all(|w| w[0].at <= w[1].at));
}

async fn illegal_transition_is_refused_and_changes_nothing(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (c, _) = store.ingest_call(&new_call(b.id, "c-3")).await.unwrap();
    let err = store
        .move_call(
            c.id,
            &mv(Position::new(Stage::Link, CallState::Pending), "skip ahead"),
        )
        .await
        .unwrap_err();
    match &err {
        StoreError::IllegalTransition(t) => {
            assert_eq!(t.call_id, c.id);
            assert_eq!(t.from, Position::new(Stage::Sync, CallState::Pending));
            assert_eq!(t.to, Position::new(Stage::Link, CallState::Pending));
        }
        other => panic!("expected IllegalTransition, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("call {}", c.id))
            && msg.contains("sync/pending")
            && msg.contains("link/pending"),
        "{msg}"
    );
    assert_eq!(store.call(c.id).await.unwrap(), c);
    assert_eq!(store.call_events(c.id).await.unwrap().len(), 1);
}

async fn stale_expectation_is_a_conflict(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (c, _) = store.ingest_call(&new_call(b.id, "c-4")).await.unwrap();
    store
        .move_call(
            c.id,
            &mv(Position::new(Stage::Sync, CallState::Running), "a"),
        )
        .await
        .unwrap();
    let mut m = mv(Position::new(Stage::Sync, CallState::Running), "b");
    m.expect = Some(Position::new(Stage::Sync, CallState::Pending));
    let err = store.move_call(c.id, &m).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("sync/running"), "{err}");
}

async fn concurrent_ingest_of_the_same_call_creates_one(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        let nc = new_call(b.id, "dup");
        tasks.push(tokio::spawn(
            async move { s.ingest_call(&nc).await.unwrap() },
        ));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (c, new) = t.await.unwrap();
        created += new as u32;
        ids.insert(c.id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
}

fn dead(job_id: &str, business: i64, stage: Stage, err: &str, attempts: u32) -> DeadJobInsert {
    let mut job = Job::new(business, stage, Some(1), serde_json::json!({"k": job_id}));
    job.id = job_id.into();
    job.attempts = attempts;
    job.errors = (1..=attempts)
        .map(|a| AttemptError {
            attempt: a,
            at: 1_000 * a as i64,
            error: format!("{err} (attempt {a})"),
        })
        .collect();
    DeadJobInsert::from_job(&job, "max attempts reached")
}

async fn dead_jobs_insert_is_idempotent_and_filters_work(store: Store) {
    let a = store
        .insert_dead_job(&dead(
            "j1",
            1,
            Stage::Transcribe,
            "stt timeout after 30000 ms",
            3,
        ))
        .await
        .unwrap();
    let again = store
        .insert_dead_job(&dead(
            "j1",
            1,
            Stage::Transcribe,
            "stt timeout after 30000 ms",
            3,
        ))
        .await
        .unwrap();
    assert_eq!(
        a, again,
        "writing the same dead job twice returns the first row"
    );
    store
        .insert_dead_job(&dead(
            "j2",
            1,
            Stage::Transcribe,
            "stt timeout after 12000 ms",
            3,
        ))
        .await
        .unwrap();
    store
        .insert_dead_job(&dead("j3", 2, Stage::Analyze, "llm output is not JSON", 2))
        .await
        .unwrap();

    let all = store
        .list_dead_jobs(&DeadJobFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let j1 = all.iter().find(|d| d.job_id == "j1").unwrap();
    assert_eq!(j1.attempts, 3);
    assert_eq!(j1.errors.len(), 3);
    assert_eq!(j1.first_error, "stt timeout after 30000 ms (attempt 1)");
    assert_eq!(j1.last_error, "stt timeout after 30000 ms (attempt 3)");
    assert_eq!((j1.first_failed_at, j1.last_failed_at), (1_000, 3_000));

    let f = DeadJobFilter {
        stage: Some(Stage::Transcribe),
        ..Default::default()
    };
    assert_eq!(store.count_dead_jobs(&f).await.unwrap(), 2);
    let f = DeadJobFilter {
        error_contains: Some("NOT JSON".into()),
        ..Default::default()
    };
    assert_eq!(store.count_dead_jobs(&f).await.unwrap(), 1);
    let f = DeadJobFilter {
        business_id: Some(1),
        ..Default::default()
    };
    assert_eq!(store.count_dead_jobs(&f).await.unwrap(), 2);

    let groups = store
        .dead_job_groups(&DeadJobFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        groups[0].count, 2,
        "the two stt timeouts fold into one signature: {groups:?}"
    );
    assert_eq!(groups.len(), 2);

    // Keyset paging visits every row once.
    let page1 = store
        .list_dead_jobs(&DeadJobFilter::default(), None, 2)
        .await
        .unwrap();
    let page2 = store
        .list_dead_jobs(&DeadJobFilter::default(), Some(page1[1].id), 2)
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 3);
    assert!(page2.iter().all(|d| !page1.contains(d)));
}

async fn dead_jobs_retry_and_discard_keep_history(store: Store) {
    let a = store
        .insert_dead_job(&dead("r1", 1, Stage::Link, "boom", 5))
        .await
        .unwrap();
    let b = store
        .insert_dead_job(&dead("r2", 1, Stage::Link, "boom", 5))
        .await
        .unwrap();
    let job = store.dead_job(a).await.unwrap().to_retry_job().unwrap();
    assert_ne!(
        job.id, "r1",
        "a retry is a new job id so a second death is a new row"
    );
    assert_eq!(
        (job.stage, job.business_id, job.attempts),
        (Stage::Link, 1, 0)
    );
    assert_eq!(
        store
            .mark_dead_jobs_retried(&[(a, job.id.clone())], "ops")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .mark_dead_jobs_retried(&[(a, "again".into())], "ops")
            .await
            .unwrap(),
        0,
        "already retried"
    );
    assert_eq!(
        store.discard_dead_jobs(&[a, b], "ops").await.unwrap(),
        1,
        "only still-dead rows are discarded"
    );
    let ra = store.dead_job(a).await.unwrap();
    assert_eq!(ra.status, DeadJobStatus::Retried);
    assert_eq!(ra.retried_as.as_deref(), Some(job.id.as_str()));
    let rb = store.dead_job(b).await.unwrap();
    assert_eq!(rb.status, DeadJobStatus::Discarded);
    assert!(rb.payload.contains("r2"), "payload kept");
    assert_eq!(
        store
            .count_dead_jobs(&DeadJobFilter::default())
            .await
            .unwrap(),
        0
    );
    let hist = DeadJobFilter {
        status: Some(DeadJobStatus::Retried),
        ..Default::default()
    };
    assert_eq!(store.count_dead_jobs(&hist).await.unwrap(), 1);
}

async fn stuck_calls_respect_stage_sla(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (old, _) = store.ingest_call(&new_call(b.id, "old")).await.unwrap();
    let (_fresh, _) = store.ingest_call(&new_call(b.id, "fresh")).await.unwrap();
    let (done, _) = store.ingest_call(&new_call(b.id, "done")).await.unwrap();
    sqlx::query("UPDATE calls SET state_since = state_since - 600000 WHERE id = $1 OR id = $2")
        .bind(old.id)
        .bind(done.id)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE calls SET state = 'done', stage = 'notify' WHERE id = $1")
        .bind(done.id)
        .execute(store.pool())
        .await
        .unwrap();
    let stuck = store
        .stuck_calls(&[(Stage::Sync, 300_000), (Stage::Transcribe, 60_000)], 100)
        .await
        .unwrap();
    assert_eq!(stuck.iter().map(|c| c.id).collect::<Vec<_>>(), vec![old.id]);
}

async fn throughput_buckets_add_up(store: Store) {
    for _ in 0..3 {
        store
            .bump_throughput(store.pool(), 7, Stage::Transcribe, 1, 60, 0)
            .await
            .unwrap();
    }
    store
        .bump_throughput(store.pool(), 7, Stage::Transcribe, 0, 0, 1)
        .await
        .unwrap();
    let b = store
        .throughput_since(callops::now_ms() - 120_000)
        .await
        .unwrap();
    let t: Vec<_> = b.iter().filter(|x| x.business_id == 7).collect();
    assert_eq!(t.iter().map(|x| x.calls).sum::<i64>(), 3);
    assert_eq!(t.iter().map(|x| x.audio_seconds).sum::<i64>(), 180);
    assert_eq!(t.iter().map(|x| x.failures).sum::<i64>(), 1);
}

async fn review_queue_orders_by_priority_then_age(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let mut ids = Vec::new();
    for (i, prio) in [(0, 1), (1, 5), (2, 1)] {
        let (c, _) = store
            .ingest_call(&new_call(b.id, &format!("rv{i}")))
            .await
            .unwrap();
        sqlx::query("UPDATE calls SET stage = 'link', state = 'review', review_priority = $1, state_since = $2 WHERE id = $3")
            .bind(prio as i64)
            .bind(1_000 + i as i64)
            .bind(c.id)
            .execute(store.pool())
            .await
            .unwrap();
        ids.push(c.id);
    }
    let q: Vec<i64> = store
        .review_queue(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(q, vec![ids[1], ids[0], ids[2]]);
}

/// `start_call_reading` with the transcript: on Postgres it comes with the start (the
/// stages after transcribe read it first: one round trip less each); "read, none" for a
/// call without one; on SQLite it is left to a read of its own.
async fn a_start_can_bring_the_transcript(store: Store) {
    use callops::store::transcripts::StoredTranscript;
    let b = store.ensure_business("acme").await.unwrap();
    let (call, _) = store.ingest_call(&new_call(b.id, "t-1")).await.unwrap();
    let (bare, _) = store.ingest_call(&new_call(b.id, "t-2")).await.unwrap();
    let t = StoredTranscript {
        call_id: call.id,
        provider: "sim".into(),
        language: Some("de".into()),
        text: "Hallo, hier ist Anna Weber.".into(),
        segments: "[]".into(),
        stt_skipped: None,
        created_at: 1,
    };
    store.save_transcript(&t).await.unwrap();
    let postgres = store.dialect() == callops::store::Dialect::Postgres;
    for (id, want) in [(call.id, Some(t.clone())), (bare.id, None)] {
        let (started, read) = store
            .start_call_reading(
                id,
                b.id,
                Stage::Sync,
                7,
                callops::now_ms() + 60_000,
                "test start",
                true,
            )
            .await
            .unwrap()
            .expect("a pending call starts");
        assert_eq!(started.id, id);
        assert_eq!(started.state, CallState::Running);
        if postgres {
            assert_eq!(read, Some(want));
        } else {
            assert_eq!(read, None);
        }
    }
    // Not asked: not read.
    store
        .move_call(
            call.id,
            &mv(Position::new(Stage::Sync, CallState::Retrying), "again"),
        )
        .await
        .unwrap();
    let (_, read) = store
        .start_call_reading(
            call.id,
            b.id,
            Stage::Sync,
            8,
            callops::now_ms() + 60_000,
            "test start",
            false,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, None);
}

/// The notify stage's lead write: the first call of a number creates the lead, each later
/// call counts once on it, a redelivered write of the same call counts nothing, and every
/// call carries its lead.
async fn a_lead_counts_each_call_once_however_often_it_is_written(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let (first, _) = store.ingest_call(&new_call(b.id, "l-1")).await.unwrap();
    let (second, _) = store.ingest_call(&new_call(b.id, "l-2")).await.unwrap();
    let phone = "+4930123456";
    let write = |call: i64, name: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .upsert_lead_for_call(b.id, call, phone, name, None, "call")
                .await
                .unwrap()
        }
    };
    let (lead, created) = write(first.id, Some("Anna Weber")).await;
    assert!(created);
    assert_eq!(
        (lead.call_count, lead.name.as_deref()),
        (1, Some("Anna Weber"))
    );
    assert_eq!(lead.phone, phone);
    // The same call again (a redelivered notify): not new, not counted.
    let (again, created) = write(first.id, None).await;
    assert!(!created);
    assert_eq!((again.id, again.call_count), (lead.id, 1));
    // The next call of the number counts once, however often it is written.
    let (next, created) = write(second.id, Some("Someone Else")).await;
    assert!(!created);
    assert_eq!((next.id, next.call_count), (lead.id, 2));
    let (next, _) = write(second.id, None).await;
    assert_eq!(next.call_count, 2);
    assert_eq!(
        next.name.as_deref(),
        Some("Anna Weber"),
        "the first name stays"
    );
    for call in [first.id, second.id] {
        let lead_id: Option<i64> = sqlx::query_scalar("SELECT lead_id FROM calls WHERE id = $1")
            .bind(call)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(lead_id, Some(lead.id), "call {call}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT call_count FROM leads WHERE id = $1")
        .bind(lead.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 2);
}
