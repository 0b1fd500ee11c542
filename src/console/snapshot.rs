//! One consistent picture of the system, fetched by the refresher and rendered by views.

use crate::domain::stage::Stage;
use crate::queue::{Broker, QueueStat};
use crate::store::audit::AuditEntry;
use crate::store::events::CallEvent;
use crate::store::transcripts::{StoredAnalysis, StoredTranscript};
use crate::store::{Call, DeadJob, DeadJobFilter, Store};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, Serialize)]
pub struct BizRow {
    pub id: i64,
    pub name: String,
    /// Calls per minute through each stage over the last 1, 5, 15, 60 minutes.
    pub rate: HashMap<String, [f64; 4]>,
    pub audio_min_per_hour: f64,
    pub backlog: HashMap<String, u64>,
    pub oldest_job_age_ms: Option<i64>,
    pub error_rate: f64,
    pub dlq: i64,
    pub review: i64,
    pub lead_filtered: i64,
    /// Calls finished per minute (notify stage), oldest first, 60 values.
    pub spark: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CallDetail {
    pub call: Option<Call>,
    pub transcript: Option<StoredTranscript>,
    pub analyses: Vec<StoredAnalysis>,
    pub events: Vec<CallEvent>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub fetched_at: i64,
    pub took_ms: i64,
    pub db_ok: bool,
    pub broker_ok: bool,
    pub broker_kind: String,
    pub error: Option<String>,
    pub businesses: Vec<BizRow>,
    pub stuck: Vec<Call>,
    pub dead: Vec<DeadJob>,
    pub dead_total: i64,
    pub dlx_unarchived: u64,
    pub review: Vec<Call>,
    pub audit: Vec<AuditEntry>,
    pub call: Option<CallDetail>,
}

/// Fetch everything the views need. Broker trouble does not hide database data.
pub async fn fetch(
    store: &Store,
    broker: &dyn Broker,
    slas: &[(Stage, i64)],
    call_id: Option<i64>,
) -> Snapshot {
    let start = crate::now_ms();
    let mut s = Snapshot {
        broker_kind: broker.kind().into(),
        ..Default::default()
    };
    let queues: Vec<QueueStat> = match broker.queue_stats(&[]).await {
        Ok(q) => {
            s.broker_ok = broker.is_connected();
            q
        }
        Err(e) => {
            s.error = Some(format!("broker: {e}"));
            vec![]
        }
    };
    s.dlx_unarchived = broker
        .unarchived_dead_letters()
        .await
        .map(|v| v.iter().map(|q| q.depth).sum())
        .unwrap_or(0);
    match fetch_db(store, slas, call_id, &queues, &mut s).await {
        Ok(()) => s.db_ok = true,
        Err(e) => s.error = Some(format!("database: {e}")),
    }
    s.fetched_at = crate::now_ms();
    s.took_ms = s.fetched_at - start;
    s
}

async fn fetch_db(
    store: &Store,
    slas: &[(Stage, i64)],
    call_id: Option<i64>,
    queues: &[QueueStat],
    s: &mut Snapshot,
) -> crate::store::Result<()> {
    let now = crate::now_ms();
    let buckets = store.throughput_since(now - 60 * 60_000).await?;
    let dead: HashMap<i64, i64> = store
        .dead_job_counts_by_business()
        .await?
        .into_iter()
        .collect();
    let review: HashMap<i64, i64> = store
        .review_counts_by_business()
        .await?
        .into_iter()
        .collect();
    let filtered: HashMap<i64, i64> = store
        .lead_filtered_by_business()
        .await?
        .into_iter()
        .collect();
    let this_minute = crate::store::throughput::minute_of(now);
    for b in store.businesses().await? {
        let mut row = BizRow {
            id: b.id,
            name: b.name.clone(),
            dlq: *dead.get(&b.id).unwrap_or(&0),
            review: *review.get(&b.id).unwrap_or(&0),
            lead_filtered: *filtered.get(&b.id).unwrap_or(&0),
            spark: vec![0; 60],
            ..Default::default()
        };
        let (mut calls60, mut fails60, mut audio60) = (0i64, 0i64, 0i64);
        for st in Stage::ALL {
            let mut r = [0.0; 4];
            for x in buckets
                .iter()
                .filter(|x| x.business_id == b.id && x.stage == st.as_str())
            {
                let age_min = (this_minute - x.minute) / 60_000;
                for (i, w) in [1, 5, 15, 60].iter().enumerate() {
                    if age_min < *w {
                        r[i] += x.calls as f64 / *w as f64;
                    }
                }
                calls60 += x.calls;
                fails60 += x.failures;
                if st == Stage::Transcribe {
                    audio60 += x.audio_seconds;
                }
                if st == Stage::Notify && (0..60).contains(&age_min) {
                    row.spark[59 - age_min as usize] += x.calls as u64;
                }
            }
            row.rate.insert(st.as_str().into(), r);
        }
        row.audio_min_per_hour = audio60 as f64 / 60.0;
        row.error_rate = if calls60 + fails60 > 0 {
            fails60 as f64 / (calls60 + fails60) as f64
        } else {
            0.0
        };
        for q in queues.iter().filter(|q| q.business_id == Some(b.id)) {
            if let Some(st) = q.stage {
                row.backlog.insert(st.as_str().into(), q.depth);
            }
            if let Some(a) = q.oldest_age_ms {
                row.oldest_job_age_ms = Some(row.oldest_job_age_ms.unwrap_or(0).max(a));
            }
        }
        s.businesses.push(row);
    }
    s.stuck = store.stuck_calls(slas, 500).await?;
    s.dead = store
        .list_dead_jobs(&DeadJobFilter::default(), None, 500)
        .await?;
    s.dead_total = store.count_dead_jobs(&DeadJobFilter::default()).await?;
    s.review = store.review_queue(500).await?;
    s.audit = store.audit_log(200).await?;
    if let Some(id) = call_id {
        s.call = Some(CallDetail {
            call: store.call(id).await.ok(),
            transcript: store.transcript(id).await?,
            analyses: store.analyses(id).await?,
            events: store.call_events(id).await?,
        });
    }
    Ok(())
}
