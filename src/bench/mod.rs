//! Rerunnable benchmarks behind `callops bench …`.

pub mod broker;
pub mod console;
pub mod console_rabbit;
pub mod idle;
pub mod link;
pub mod pipeline;
pub mod raw_lapin;
