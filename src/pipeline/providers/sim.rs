//! Settings shared by the simulated providers: latency with jitter and failure rates,
//! deterministic per input so a rerun behaves the same.

use super::ProviderError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SimSettings {
    pub latency: Duration,
    /// 0..1: latency varies by ± this share.
    pub jitter: f64,
    pub transient_rate: f64,
    pub permanent_rate: f64,
    pub malformed_rate: f64,
    pub seed: u64,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            latency: Duration::ZERO,
            jitter: 0.0,
            transient_rate: 0.0,
            permanent_rate: 0.0,
            malformed_rate: 0.0,
            seed: 7,
        }
    }
}

/// A stable 64-bit hash (FNV-1a) of the input and an attempt salt.
pub fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// A uniform number in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl SimSettings {
    /// Sleep the simulated latency.
    pub async fn wait(&self, key: u64) {
        if self.latency.is_zero() {
            return;
        }
        let j = (unit(key.rotate_left(17)) * 2.0 - 1.0) * self.jitter;
        let d = self.latency.mul_f64((1.0 + j).max(0.05));
        tokio::time::sleep(d).await;
    }

    /// Decide a failure for this call. Each attempt draws anew (a per-process counter is
    /// mixed in), so retries can succeed, while the rates hold over many calls.
    pub fn failure(&self, provider: &str, key: u64) -> Option<ProviderError> {
        let draw = unit(key ^ self.seed.wrapping_mul(0x9e3779b97f4a7c15) ^ attempt_salt());
        if draw < self.permanent_rate {
            return Some(ProviderError::Permanent {
                provider: provider.into(),
                message: "400 Bad Request: unsupported audio encoding (simulated)".into(),
            });
        }
        if draw < self.permanent_rate + self.transient_rate {
            return Some(ProviderError::Transient {
                provider: provider.into(),
                message: format!(
                    "timeout after {} ms (simulated)",
                    (self.latency.as_millis() as u64).max(1) * 3
                ),
            });
        }
        None
    }

    pub fn malformed(&self, key: u64) -> bool {
        unit(key.rotate_left(29) ^ self.seed ^ attempt_salt()) < self.malformed_rate
    }
}

fn attempt_salt() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0xd6e8feb86659fd93)
}
