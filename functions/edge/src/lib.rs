//! Edge glue shared by every Leadheat worker. The product's rules live in `leadheat-domain`;
//! this crate binds them to the Workers runtime: the directory and the org shards in D1
//! (`directory`, `tenant`, and one module per shard table under `store`), queues, configuration,
//! the clock and randomness.

pub mod clock;
pub mod config;
pub mod connect;
pub mod db;
pub mod directory;
pub mod http;
pub mod idp;
pub mod live;
pub mod ownership;
pub mod platform_api;
pub mod queue;
pub mod store;
pub mod tenant;
pub mod tokens;
