//! Rerunnable benchmarks behind `callops bench …`.

pub mod broker;
pub mod pipeline;
