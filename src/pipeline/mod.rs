//! The running system: stage workers and the providers they call.

pub mod providers;
