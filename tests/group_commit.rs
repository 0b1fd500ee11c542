//! The group commit (issue 14), on SQLite and on Postgres: a batch of stage starts and a
//! batch of stage results write what each member would have written alone, a member that
//! lost its lease writes nothing and is told so, a call in the batch twice runs once, and
//! a member that breaks the batch's transaction fails alone.

#[macro_use]
mod common;

use callops::domain::stage::{CallState, Position, Stage};
use callops::queue::Job;
use callops::store::events::PendingEvent;
use callops::store::group_commit::StartRequest;
use callops::store::stage_commit::{JobTable, StageCommitOwned};
use callops::store::transcripts::{StoredAnalysis, StoredTranscript};
use callops::store::{NewCall, Store, StoreError};

both_stores!(
    a_batch_of_starts_starts_each_waiting_call_once,
    a_batch_of_results_writes_what_each_would_alone,
    a_member_that_breaks_the_batch_fails_alone,
    a_batch_of_cache_lookups_answers_each_with_its_own_keys,
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

fn start(call_id: i64, business_id: i64, stage: Stage, token: i64) -> StartRequest {
    StartRequest {
        call_id,
        business_id,
        stage,
        token,
        lease_until: callops::now_ms() + 60_000,
        reason: format!("{stage} started (token {token})"),
        with_transcript: true,
        with_record: true,
    }
}

fn result(call_id: i64, business_id: i64, token: i64, to: Position) -> StageCommitOwned {
    StageCommitOwned {
        call_id,
        business_id,
        token,
        stage: Stage::Sync,
        to,
        kind: if to.state == CallState::Review {
            "review"
        } else {
            "completed"
        },
        reason: format!("sync done for call {call_id}"),
        audio_seconds: 61,
        next_job: None,
        job_table: JobTable::Outbox,
        ack: None,
        events: Vec::new(),
        call_fields: Vec::new(),
        analyses: Vec::new(),
        transcript: None,
    }
}

async fn calls(store: &Store, business_id: i64, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (c, _) = store
            .ingest_call(&new_call(business_id, &format!("gc-{i}")))
            .await
            .unwrap();
        ids.push(c.id);
    }
    ids
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// (kind, reason) of a call's trace rows, oldest first.
async fn trace(store: &Store, call_id: i64) -> Vec<(String, String)> {
    sqlx::query_as(&format!(
        "SELECT kind, reason FROM call_events WHERE call_id = {call_id} ORDER BY id"
    ))
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn a_batch_of_starts_starts_each_waiting_call_once(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let ids = calls(&store, b.id, 5).await;
    let t = StoredTranscript {
        call_id: ids[0],
        provider: "sim".into(),
        language: Some("de".into()),
        text: "Hallo, hier ist Anna Weber.".into(),
        segments: "[]".into(),
        stt_skipped: None,
        created_at: 1,
    };
    store.save_transcript(&t).await.unwrap();
    let mut quiet = start(ids[4], b.id, Stage::Sync, 16);
    quiet.with_transcript = false;
    quiet.with_record = false;
    let reqs = vec![
        start(ids[0], b.id, Stage::Sync, 10),
        start(ids[1], b.id, Stage::Sync, 11),
        // A redelivery beside its delivery: one of the two runs.
        start(ids[2], b.id, Stage::Sync, 12),
        start(ids[2], b.id, Stage::Sync, 13),
        // Not at this stage: nothing to start.
        start(ids[3], b.id, Stage::Transcribe, 14),
        // Another business's id: not started.
        start(ids[3], b.id + 1000, Stage::Sync, 15),
        quiet,
    ];
    let out: Vec<_> = store
        .start_calls(reqs.clone())
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let postgres = store.dialect() == callops::store::Dialect::Postgres;
    for (i, want) in [(0usize, ids[0]), (1, ids[1]), (6, ids[4])] {
        let run = out[i].clone().expect("a waiting call starts");
        let (call, read) = (run.call, run.transcript);
        match (i, run.record) {
            (6, r) => assert_eq!(r, None, "not asked, not read"),
            (_, Some(r)) => {
                assert_eq!(r.raw, format!("{{\"id\":\"gc-{i}\"}}"));
                assert_eq!(r.intent, None);
            }
            (_, None) => panic!("member {i}: the record was asked for"),
        }
        assert_eq!(call.id, want);
        assert_eq!(call.state, CallState::Running);
        assert_eq!(call.attempts, 1);
        let transcript = match i {
            0 => Some(Some(t.clone())),
            1 => Some(None),
            _ => None,
        };
        // A batch reads transcripts on both stores.
        assert_eq!(read, transcript, "member {i}");
    }
    assert_eq!(
        out[2].is_some() as u8 + out[3].is_some() as u8,
        1,
        "a call in the batch twice starts once"
    );
    assert!(out[4].is_none() && out[5].is_none());
    let winner = if out[2].is_some() { 12 } else { 13 };
    let lease: i64 = count(
        &store,
        &format!("SELECT lease_token FROM calls WHERE id = {}", ids[2]),
    )
    .await;
    assert_eq!(lease, winner, "the lease is the started run's");
    for (id, want) in [
        (ids[0], 1),
        (ids[1], 1),
        (ids[2], 1),
        (ids[3], 0),
        (ids[4], 1),
    ] {
        let started: Vec<_> = trace(&store, id)
            .await
            .into_iter()
            .filter(|(k, _)| k == "started")
            .collect();
        assert_eq!(
            started.len(),
            want,
            "started rows of call {id}: {started:?}"
        );
    }
    let reason = trace(&store, ids[2]).await.last().unwrap().1.clone();
    assert_eq!(reason, format!("sync started (token {winner})"));
    let (c3, _) = store
        .call(ids[3])
        .await
        .map(|c| (c.state, c.attempts))
        .unwrap();
    assert_eq!(c3, CallState::Pending);
    // A lone start (no batch) reads the same; the transcript only on Postgres.
    let lone = store
        .start_calls(vec![start(ids[3], b.id, Stage::Sync, 20)])
        .await
        .pop()
        .unwrap()
        .unwrap()
        .expect("a waiting call starts");
    assert_eq!(lone.call.id, ids[3]);
    assert_eq!(
        lone.record.map(|r| r.raw),
        Some("{\"id\":\"gc-3\"}".to_string())
    );
    assert_eq!(lone.transcript, postgres.then_some(None));
}

async fn started(store: &Store, business_id: i64, n: usize) -> Vec<i64> {
    let ids = calls(store, business_id, n).await;
    let reqs = ids
        .iter()
        .map(|&id| start(id, business_id, Stage::Sync, 1000 + id))
        .collect();
    for r in store.start_calls(reqs).await {
        r.unwrap().expect("started");
    }
    ids
}

async fn a_batch_of_results_writes_what_each_would_alone(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let ids = started(&store, b.id, 5).await;
    let token = |i: usize| 1000 + ids[i];
    let next = Position::new(Stage::Transcribe, CallState::Pending);
    // The database broker's claim of call 1's sync job.
    sqlx::query(&format!(
        "INSERT INTO jobs (job_id, queue, business_id, stage, call_id, payload, first_enqueued_at, \
         enqueued_at, run_at, claimed_at, claim_token) VALUES ('sync-job-1', 'q', {}, 'sync', {}, '{{}}', 1, 1, 1, 1, 4242)",
        b.id, ids[1]
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let claim_row = count(&store, "SELECT id FROM jobs WHERE job_id = 'sync-job-1'").await;

    let mut r0 = result(ids[0], b.id, token(0), next);
    r0.events = vec![
        PendingEvent {
            at: 5,
            stage: Stage::Sync,
            kind: "number".into(),
            reason: "caller number valid".into(),
            detail: None,
        },
        PendingEvent {
            at: 6,
            stage: Stage::Sync,
            kind: "name".into(),
            reason: "name heard".into(),
            detail: Some("{\"name\":\"Anna\"}".into()),
        },
    ];
    r0.call_fields = vec![("extracted_name", Some("Anna Weber".into()))];
    let j0 = Job::new(
        b.id,
        Stage::Transcribe,
        Some(ids[0]),
        serde_json::json!({ "call_id": ids[0] }),
    );
    r0.next_job = Some(j0.clone());
    let mut r1 = result(ids[1], b.id, token(1), next);
    let j1 = Job::new(
        b.id,
        Stage::Transcribe,
        Some(ids[1]),
        serde_json::json!({ "call_id": ids[1] }),
    );
    r1.next_job = Some(j1.clone());
    r1.job_table = JobTable::Jobs;
    r1.ack = Some((claim_row, 4242));
    let r2 = result(
        ids[2],
        b.id,
        token(2),
        Position::new(Stage::Sync, CallState::Review),
    );
    // Lost its lease: another run holds the call.
    let r3 = result(ids[3], b.id, 77, next);
    let mut r4 = result(
        ids[4],
        b.id,
        token(4),
        Position::new(Stage::Sync, CallState::Done),
    );
    r4.analyses = vec![StoredAnalysis {
        id: 0,
        call_id: ids[4],
        agent_id: None,
        agent_version: 1,
        kind: "summary".into(),
        cache_key: "k-4".into(),
        result: "{\"summary\":\"short\"}".into(),
        raw_output: None,
        created_at: 0,
    }];
    r4.transcript = Some(StoredTranscript {
        call_id: ids[4],
        provider: "sim".into(),
        language: Some("de".into()),
        text: "Guten Tag.".into(),
        segments: "[]".into(),
        stt_skipped: None,
        created_at: 9,
    });
    let t4 = r4.transcript.clone();
    // The same result twice (a duplicate run's commit): written once.
    let out = store
        .commit_stage_results(vec![r0, r1, r2.clone(), r3, r4, r2])
        .await;
    assert!(!out[0].as_ref().unwrap().acked);
    assert!(
        out[1].as_ref().unwrap().acked,
        "the claimed job row is deleted with the move"
    );
    assert!(out[2].is_ok() && out[4].is_ok());
    assert!(
        matches!(out[3], Err(StoreError::Conflict(_))),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(out[5], Err(StoreError::Conflict(_))),
        "{:?}",
        out[5]
    );

    let pos = |i: usize| {
        let store = store.clone();
        let id = ids[i];
        async move { store.call(id).await.unwrap() }
    };
    let c0 = pos(0).await;
    assert_eq!((c0.position(), c0.attempts), (next, 0));
    assert_eq!(c0.extracted_name.as_deref(), Some("Anna Weber"));
    assert_eq!(pos(1).await.position(), next);
    assert_eq!(pos(1).await.extracted_name, None, "columns are set per run");
    assert_eq!(
        pos(2).await.position(),
        Position::new(Stage::Sync, CallState::Review)
    );
    assert_eq!(
        pos(3).await.position(),
        Position::new(Stage::Sync, CallState::Running)
    );
    assert_eq!(
        pos(4).await.position(),
        Position::new(Stage::Sync, CallState::Done)
    );
    let lease_left = count(
        &store,
        &format!(
            "SELECT COUNT(*) FROM calls WHERE lease_token IS NOT NULL AND id IN ({}, {}, {}, {})",
            ids[0], ids[1], ids[2], ids[4]
        ),
    )
    .await;
    assert_eq!(lease_left, 0, "a result releases its lease");

    // Noted rows first, the result row last.
    let t0: Vec<String> = trace(&store, ids[0])
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(t0, ["ingested", "started", "number", "name", "completed"]);
    let t2 = trace(&store, ids[2]).await;
    assert_eq!(t2.iter().filter(|(k, _)| k == "review").count(), 1);
    assert_eq!(
        t2.last().unwrap().1,
        format!("sync done for call {}", ids[2])
    );
    assert!(!trace(&store, ids[3])
        .await
        .iter()
        .any(|(k, _)| k == "completed"));
    let detail: Option<String> = sqlx::query_scalar(&format!(
        "SELECT detail FROM call_events WHERE call_id = {} AND kind = 'name'",
        ids[0]
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(detail.as_deref(), Some("{\"name\":\"Anna\"}"));

    // Four results counted (not the lost one, not the duplicate), with their audio.
    let tp: (i64, i64) = sqlx::query_as(&format!(
        "SELECT CAST(SUM(calls) AS BIGINT), CAST(SUM(audio_seconds) AS BIGINT) FROM throughput WHERE business_id = {} AND stage = 'sync'",
        b.id
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(tp, (4, 4 * 61));
    // The next jobs: call 0's in the outbox, call 1's in the jobs table, nothing else.
    let outbox: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT job_id, call_id, body FROM outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        (outbox[0].0.as_str(), outbox[0].1),
        (j0.id.as_str(), ids[0])
    );
    let body: Job = serde_json::from_str(&outbox[0].2).unwrap();
    assert_eq!(body, j0);
    let jobs: Vec<(String, i64, String, String)> =
        sqlx::query_as("SELECT job_id, call_id, stage, queue FROM jobs ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![(j1.id.clone(), ids[1], "transcribe".to_string(), j1.queue())]
    );
    let analyses = count(
        &store,
        &format!(
            "SELECT COUNT(*) FROM analyses WHERE call_id = {} AND cache_key = 'k-4'",
            ids[4]
        ),
    )
    .await;
    assert_eq!(analyses, 1);
    assert_eq!(store.transcript(ids[4]).await.unwrap(), t4);
    assert_eq!(store.transcript(ids[0]).await.unwrap(), None);
}

async fn a_member_that_breaks_the_batch_fails_alone(store: Store) {
    let b = store.ensure_business("acme").await.unwrap();
    let ids = started(&store, b.id, 3).await;
    let next = Position::new(Stage::Transcribe, CallState::Pending);
    let mut rs: Vec<StageCommitOwned> = (0..3)
        .map(|i| result(ids[i], b.id, 1000 + ids[i], next))
        .collect();
    // An agent result of an agent that does not exist (a foreign key): call 2's result
    // cannot commit, and the batch's transaction fails with it.
    rs[2].analyses = vec![StoredAnalysis {
        id: 0,
        call_id: ids[2],
        agent_id: Some(987_654),
        agent_version: 1,
        kind: "summary".into(),
        cache_key: "k-2".into(),
        result: "{}".into(),
        raw_output: None,
        created_at: 0,
    }];
    rs[2].events = vec![PendingEvent {
        at: 5,
        stage: Stage::Sync,
        kind: "number".into(),
        reason: "caller number valid".into(),
        detail: None,
    }];
    rs[2].transcript = Some(StoredTranscript {
        call_id: ids[2],
        provider: "sim".into(),
        language: None,
        text: "Hallo.".into(),
        segments: "[]".into(),
        stt_skipped: None,
        created_at: 9,
    });
    let out = store.commit_stage_results(rs).await;
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    assert_eq!(
        store.transcript(ids[2]).await.unwrap(),
        None,
        "nothing of the failed member"
    );
    match &out[2] {
        Err(StoreError::Conflict(e)) => panic!("not a lost lease: {e}"),
        Err(_) => {}
        Ok(c) => panic!("committed with a missing agent: {c:?}"),
    }
    for id in &ids[..2] {
        assert_eq!(store.call(*id).await.unwrap().position(), next);
    }
    // Nothing of the failed member was written: still running, no trace rows of its run.
    let c2 = store.call(ids[2]).await.unwrap();
    assert_eq!(
        c2.position(),
        Position::new(Stage::Sync, CallState::Running)
    );
    let kinds: Vec<String> = trace(&store, ids[2])
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds, ["ingested", "started"]);
    let tp = count(
        &store,
        &format!(
            "SELECT CAST(SUM(calls) AS BIGINT) FROM throughput WHERE business_id = {}",
            b.id
        ),
    )
    .await;
    assert_eq!(tp, 2);
}

/// Analysis cache lookups read together answer each lookup with the hits of its own keys
/// only, as each would alone; alone or grouped, the answer is the same.
async fn a_batch_of_cache_lookups_answers_each_with_its_own_keys(store: Store) {
    let b = store.ensure_business("cache").await.unwrap();
    let (call, _) = store.ingest_call(&new_call(b.id, "c-1")).await.unwrap();
    let saved: Vec<StoredAnalysis> = ["k-a", "k-b", "k-c"]
        .iter()
        .map(|k| StoredAnalysis {
            id: 0,
            call_id: call.id,
            agent_id: None,
            agent_version: 1,
            kind: "summary".into(),
            cache_key: (*k).into(),
            result: format!("{{\"of\":\"{k}\"}}"),
            raw_output: None,
            created_at: 0,
        })
        .collect();
    store
        .save_analyses_in(store.pool(), call.id, &saved)
        .await
        .unwrap();
    let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let lookups = vec![
        keys(&["k-a", "k-x"]),
        keys(&["k-b", "k-c"]),
        keys(&["k-y"]),
        keys(&["k-a"]),
    ];
    let batch = store.cached_analyses_batch(lookups.clone()).await;
    assert_eq!(batch.len(), lookups.len());
    for (ks, got) in lookups.iter().zip(batch) {
        let got = got.unwrap();
        let alone = store.cached_analyses(ks).await.unwrap();
        assert_eq!(got, alone, "lookup {ks:?}");
        assert!(got.keys().all(|k| ks.contains(k)), "{ks:?}: {got:?}");
    }
    let grouped = store
        .cached_analyses_grouped(keys(&["k-c", "k-z"]))
        .await
        .unwrap();
    assert_eq!(grouped.len(), 1);
    assert_eq!(grouped["k-c"], "{\"of\":\"k-c\"}");
}
