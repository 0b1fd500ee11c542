//! Per-business rate limit (token bucket): one business's flood (or a misbehaving
//! provider's retry storm) cannot take the database from the others. Over the limit a
//! request is answered 429 with Retry-After, before anything is read or written.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: per_minute.max(1) as f64 / 60.0,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request of `business`: Ok, or Err(seconds to wait).
    pub fn take(&self, business: i64) -> Result<(), u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = b.entry(business).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn burst_then_refused_with_a_wait() {
        let l = super::RateLimiter::new(60, 3);
        assert!((0..3).all(|_| l.take(1).is_ok()));
        assert_eq!(l.take(1), Err(1));
        assert!(l.take(2).is_ok(), "another business has its own bucket");
    }
}
