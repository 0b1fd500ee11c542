//! Crash points for the crash tests: with `CALLOPS_FAILPOINT=NAME` (optionally `NAME:N`,
//! the N-th hit), the process announces `FAILPOINT NAME` on stderr when it reaches that
//! point and then hangs there, so a test can `kill -9` the real binary at exactly that
//! moment. Unset (every real deployment), a hit is one relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("CALLOPS_FAILPOINT").ok()?;
            let (name, nth) = match v.split_once(':') {
                Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
                None => (v, 1),
            };
            Some((name, nth.max(1)))
        })
        .as_ref()
}

/// Whether any crash point is armed (callers skip building point names otherwise).
pub fn enabled() -> bool {
    armed().is_some()
}

/// Reached `name`: hang here if the test armed it (never returns then).
pub async fn hit(name: &str) {
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Some((armed, nth)) = armed() else { return };
    if armed != name || HITS.fetch_add(1, Ordering::Relaxed) + 1 != *nth {
        return;
    }
    eprintln!("FAILPOINT {name}");
    std::future::pending::<()>().await;
}
