//! callops: post-call analytics pipeline and its terminal operations console.
//!
//! Layers (imports point down, never up): cli → console → views → pipeline/ops →
//! store/queue → domain/config.

pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod failpoint;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod queue;
pub mod redact;
pub mod serve;
pub mod store;
pub mod views;

/// Milliseconds since the Unix epoch: the one time unit stored anywhere.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
