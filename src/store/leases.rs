//! Lease heartbeats for every stage run of a process in one statement per few hundred
//! runs. A per-run heartbeat was one write per run every third of the lease: with 4,000
//! slow provider calls in flight per stage that alone was thousands of writes a second and
//! capped the pipeline (issue 14). A run whose lease was lost (it ran out and another run
//! took the call) is told so, and stops.

use super::{Ctx, Result, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

const CHUNK: usize = 400;

#[derive(Default)]
struct Lost {
    lost: AtomicBool,
    notify: Notify,
}

/// The leases this process holds, renewed together every third of the lease.
pub struct LeaseKeeper {
    store: Store,
    lease: Duration,
    /// (call, lease token) → (lost signal, the database broker's claim of its job).
    held: Mutex<HashMap<Pair, Held>>,
}

/// (call, lease token) or (job row, claim token).
type Pair = (i64, i64);
/// A run's lost signal and the database broker's claim of its job.
type Held = (Arc<Lost>, Option<Pair>);

/// One run's lease, renewed while this lives.
pub struct LeaseHold {
    keeper: Arc<LeaseKeeper>,
    key: (i64, i64),
    lost: Arc<Lost>,
}

impl LeaseHold {
    /// Resolves once a renewal found the lease gone (it ran out and another run took the
    /// call): the run must not commit anything.
    pub async fn lost(&self) {
        loop {
            let notified = self.lost.notify.notified();
            if self.lost.lost.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        self.keeper.held.lock().unwrap().remove(&self.key);
    }
}

impl Store {
    /// This store's lease keeper (one per process and database), renewing leases of
    /// `lease` length; its task starts with the first call.
    pub fn lease_keeper(&self, lease: Duration) -> Arc<LeaseKeeper> {
        self.lease_keeper
            .get_or_init(|| {
                let k = Arc::new(LeaseKeeper {
                    store: self.clone(),
                    lease,
                    held: Mutex::new(HashMap::new()),
                });
                tokio::spawn(renew_loop(Arc::downgrade(&k)));
                k
            })
            .clone()
    }

    /// Push the leases `(call, token)` on to `until`; returns those still held.
    pub async fn extend_leases(
        &self,
        leases: &[(i64, i64)],
        until: i64,
    ) -> Result<std::collections::HashSet<(i64, i64)>> {
        let mut kept = std::collections::HashSet::new();
        for chunk in leases.chunks(CHUNK) {
            // Our own integers. Tokens are random 63-bit values, so matching the two lists
            // separately cannot pair one run's call with another run's token.
            let ids = super::id_list(&chunk.iter().map(|(c, _)| *c).collect::<Vec<_>>());
            let tokens = super::id_list(&chunk.iter().map(|(_, t)| *t).collect::<Vec<_>>());
            let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
                "UPDATE calls SET lease_until = $1 WHERE id IN ({ids}) AND lease_token IN ({tokens}) \
                 RETURNING id, lease_token"
            ))
            .bind(until)
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("renewing {} stage leases", chunk.len()))?;
            kept.extend(rows);
        }
        Ok(kept)
    }
}

impl Store {
    /// Keep the database broker's claims `(row id, claim token)` invisible to other
    /// workers until `until` (their handlers still run).
    pub async fn extend_job_claims(&self, claims: &[(i64, i64)], until: i64) -> Result<()> {
        for chunk in claims.chunks(CHUNK) {
            let ids = super::id_list(&chunk.iter().map(|(r, _)| *r).collect::<Vec<_>>());
            let tokens = super::id_list(&chunk.iter().map(|(_, t)| *t).collect::<Vec<_>>());
            sqlx::query(&format!(
                "UPDATE jobs SET run_at = $1 WHERE id IN ({ids}) AND claim_token IN ({tokens})"
            ))
            .bind(until)
            .execute(&self.pool)
            .await
            .ctx(|| format!("renewing {} job claims", chunk.len()))?;
        }
        Ok(())
    }
}

impl LeaseKeeper {
    /// Keep `(call_id, token)` leased, and the database broker's claim `(row id, claim
    /// token)` of the job being run, until the returned hold is dropped.
    pub fn hold(
        self: &Arc<Self>,
        call_id: i64,
        token: i64,
        claim: Option<(i64, i64)>,
    ) -> LeaseHold {
        let lost = Arc::new(Lost::default());
        self.held
            .lock()
            .unwrap()
            .insert((call_id, token), (lost.clone(), claim));
        LeaseHold {
            keeper: self.clone(),
            key: (call_id, token),
            lost,
        }
    }
}

async fn renew_loop(keeper: Weak<LeaseKeeper>) {
    let every = match keeper.upgrade() {
        Some(k) => (k.lease / 3).max(Duration::from_millis(100)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(k) = keeper.upgrade() else { return };
        let (leases, claims): (Vec<Pair>, Vec<Pair>) = {
            let held = k.held.lock().unwrap();
            (
                held.keys().copied().collect(),
                held.values().filter_map(|(_, c)| *c).collect(),
            )
        };
        if leases.is_empty() {
            continue;
        }
        let until = crate::now_ms() + k.lease.as_millis() as i64;
        if let Err(e) = k.store.extend_job_claims(&claims, until).await {
            // The call lease still fences the stage's result.
            tracing::warn!(error = %e, claims = claims.len(), "renewing job claims failed");
        }
        match k.store.extend_leases(&leases, until).await {
            Ok(kept) => {
                let held = k.held.lock().unwrap();
                for key in leases.iter().filter(|key| !kept.contains(key)) {
                    // Still held here but gone in the database: released by a settle that
                    // raced this renewal (the hold is about to drop), or lost to a takeover.
                    if let Some((lost, _)) = held.get(key) {
                        lost.lost.store(true, Ordering::Relaxed);
                        lost.notify.notify_waiters();
                    }
                }
            }
            // Database unreachable: keep working; the fence at commit decides.
            Err(e) => tracing::warn!(error = %e, leases = leases.len(), "lease renewal failed"),
        }
    }
}
