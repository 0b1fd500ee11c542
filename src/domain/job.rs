//! The unit of work the pipeline moves between stages: a job, its failed attempts, its id.
//! Pure data (no I/O): shared by the queue backends that carry jobs and the store that
//! archives dead ones.

use crate::domain::stage::Stage;
use serde::{Deserialize, Serialize};

/// One attempt that failed, kept with the job until it succeeds or dies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    /// Unix epoch milliseconds.
    pub at: i64,
    pub error: String,
}

/// A unit of work for one stage of one call of one business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique per logical job; survives retries (dedup key for idempotent handlers).
    pub id: String,
    pub business_id: i64,
    pub stage: Stage,
    pub call_id: Option<i64>,
    pub payload: serde_json::Value,
    /// Attempts already made before this delivery (0 on first delivery).
    pub attempts: u32,
    pub errors: Vec<AttemptError>,
    /// When the job was first published (epoch ms).
    pub first_enqueued_at: i64,
}

impl Job {
    pub fn new(
        business_id: i64,
        stage: Stage,
        call_id: Option<i64>,
        payload: serde_json::Value,
    ) -> Job {
        Job {
            id: new_job_id(),
            business_id,
            stage,
            call_id,
            payload,
            attempts: 0,
            errors: Vec::new(),
            first_enqueued_at: crate::now_ms(),
        }
    }

    pub fn queue(&self) -> String {
        self.stage.queue_for(self.business_id)
    }
}

/// A random 128-bit id in hex; no uuid crate needed for an opaque key.
pub fn new_job_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
