//! Edge glue shared by every Leadheat worker. The product's rules live in `leadheat-domain`;
//! this crate only binds them to the Workers runtime: D1, queues, the clock and randomness.

pub mod clock;
pub mod http;
