//! One module per table (or per tightly bound group of tables): all SQL lives here.

pub mod custom_fields;
pub mod dashboard;
pub mod heat;
pub mod idempotency;
pub mod inbox;
pub mod integrations;
pub mod interactions;
pub mod jobs;
pub mod leads;
pub mod orgs;
pub mod rate_limits;
pub mod rescoring;
pub mod scoring_configs;
pub mod social_profiles;
pub mod stages;
pub mod throttles;
pub mod tracking;
