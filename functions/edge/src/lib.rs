//! Edge glue shared by every Leadheat worker. The product's rules live in `leadheat-domain`;
//! this crate binds them to the Workers runtime: D1 (one module per table under `store`), queues,
//! configuration, the clock and randomness.

pub mod clock;
pub mod config;
pub mod db;
pub mod http;
pub mod lead_matching;
pub mod live;
pub mod ownership;
pub mod platform_api;
pub mod queue;
pub mod store;
pub mod tokens;
pub mod touchpoints;
