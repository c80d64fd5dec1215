//! `platform_throttles`: per (org, platform) rate-limit blocks and the circuit breaker, whose rules
//! live in the domain (`leadheat_domain::sync::Throttle`).

use chrono::{DateTime, Utc};
use leadheat_domain::sync::Throttle;
use serde::Deserialize;
use serde_json::Value;

use crate::args;
use crate::clock;
use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

#[derive(Debug, Deserialize)]
struct Row {
    blocked_until: Option<String>,
    consecutive_failures: i64,
    circuit_open_until: Option<String>,
}

fn instant(value: Option<String>) -> Option<DateTime<Utc>> {
    value
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The throttle state (default: never throttled, circuit closed).
pub async fn get(tenant: &Tenant, platform: &str) -> Result<Throttle, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<Row> = db::first(
        db,
        "SELECT blocked_until, consecutive_failures, circuit_open_until FROM platform_throttles \
         WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform],
    )
    .await?;
    Ok(row.map_or_else(Throttle::default, |r| Throttle {
        blocked_until: instant(r.blocked_until),
        consecutive_failures: r.consecutive_failures.max(0) as u32,
        circuit_open_until: instant(r.circuit_open_until),
    }))
}

pub async fn put(
    tenant: &Tenant,
    platform: &str,
    throttle: &Throttle,
    usage: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO platform_throttles (org_id, platform, blocked_until, consecutive_failures, circuit_open_until, last_usage, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (org_id, platform) DO UPDATE SET blocked_until = excluded.blocked_until, \
         consecutive_failures = excluded.consecutive_failures, circuit_open_until = excluded.circuit_open_until, \
         last_usage = COALESCE(excluded.last_usage, platform_throttles.last_usage), updated_at = excluded.updated_at",
        &args![
            org_id,
            platform,
            throttle.blocked_until.map(clock::rfc3339),
            throttle.consecutive_failures,
            throttle.circuit_open_until.map(clock::rfc3339),
            usage.map(Value::to_string),
            clock::rfc3339(now)
        ],
    )
    .await?;
    Ok(())
}

/// The throttle rows of an org, for the integrations status.
#[derive(Debug, Clone, Deserialize)]
pub struct ThrottleStatus {
    pub platform: String,
    pub blocked_until: Option<String>,
    pub consecutive_failures: i64,
    pub circuit_open_until: Option<String>,
    pub last_usage: Option<String>,
}

pub async fn list(tenant: &Tenant) -> Result<Vec<ThrottleStatus>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT platform, blocked_until, consecutive_failures, circuit_open_until, last_usage \
         FROM platform_throttles WHERE org_id = ?1",
        &args![org_id],
    )
    .await
}
