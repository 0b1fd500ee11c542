//! Pure types and rules: no I/O, imports nothing else of the crate.

pub mod decisions;
pub mod hours;
pub mod job;
pub mod names;
pub mod outbound;
pub mod phone;
pub mod signature;
pub mod stage;
pub mod text;
