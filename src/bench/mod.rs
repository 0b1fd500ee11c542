//! Rerunnable benchmarks behind `callops bench …`.

pub mod broker;
pub mod console;
pub mod pipeline;
