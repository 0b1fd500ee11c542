//! Pure types and rules: no I/O, imports nothing else of the crate.

pub mod signature;
pub mod stage;
