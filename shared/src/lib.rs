//! Leadheat's domain: every rule of the product that does not need the edge runtime.
//!
//! Nothing here reads a clock, draws randomness or performs I/O: callers pass `now`, nonces and
//! random bytes in, so every function is deterministic and tested natively with `cargo test`.

pub mod auth;
pub mod crypto;
pub mod ids;
pub mod scoring;
pub mod signature;
pub mod types;
