//! Rerunnable benchmarks behind `callops bench …`.

pub mod broker;
pub mod console;
pub mod idle;
pub mod pipeline;
pub mod raw_lapin;
