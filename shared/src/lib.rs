//! Leadheat's domain: every rule of the product that does not need the edge runtime.
//!
//! Nothing here reads a clock, draws randomness or performs I/O: callers pass `now`, nonces and
//! random bytes in, so every function is deterministic and tested natively with `cargo test`.

pub mod auth;
pub mod body;
pub mod crypto;
pub mod cursor;
pub mod custom_fields;
pub mod d1_limits;
pub mod dashboard;
pub mod delivery;
pub mod demo;
pub mod handshake;
pub mod heat_state;
pub mod idempotency;
pub mod idp;
pub mod ids;
pub mod jwks;
pub mod lead_bulk;
pub mod lead_forms;
pub mod lead_query;
pub mod leads;
pub mod live;
pub mod members;
pub mod oauth;
pub mod oidc;
pub mod ownership;
pub mod pipeline;
pub mod platforms;
pub mod ranking;
pub mod rate_limit;
pub mod rescoring;
pub mod scoring;
pub mod scoring_preview;
pub mod sharding;
pub mod signature;
pub mod suppression;
pub mod sync;
pub mod tracking;
pub mod types;
