//! Placing orgs on shards, and the rule a shard move is verified by.
//!
//! Every org's rows live on one shard database; the directory records which. New orgs go to the
//! shard with the fewest orgs (ties to the lowest index, so placement is deterministic), which
//! spreads orgs evenly as shards are added: a new, empty shard takes every new org until it
//! catches up.

use std::collections::BTreeMap;

/// How many orgs a shard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLoad {
    pub shard: u32,
    pub orgs: u64,
}

/// The shard a new org goes to among shards `0..shard_count`: the one with the fewest orgs, the
/// lowest index among equals. Loads of shards outside the range (a shard no longer bound) are
/// ignored; a shard absent from `loads` holds none.
pub fn least_loaded(loads: &[ShardLoad], shard_count: u32) -> u32 {
    let mut orgs = vec![0u64; shard_count as usize];
    for load in loads {
        if let Some(slot) = orgs.get_mut(load.shard as usize) {
            *slot += load.orgs;
        }
    }
    orgs.iter()
        .enumerate()
        .min_by_key(|(index, count)| (**count, *index))
        .map_or(0, |(index, _)| index as u32)
}

/// Rows per table of one org on one shard.
pub type TableCounts = BTreeMap<String, u64>;

/// Why a copied org does not match its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMismatch {
    pub table: String,
    pub source: u64,
    pub copy: u64,
}

impl std::fmt::Display for CountMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows at the source, {} in the copy",
            self.table, self.source, self.copy
        )
    }
}

/// A move may flip the directory only when the copy holds exactly the source's rows, table by
/// table (a table missing on one side counts as empty).
pub fn verify_copy(source: &TableCounts, copy: &TableCounts) -> Result<(), Vec<CountMismatch>> {
    let tables: std::collections::BTreeSet<&String> = source.keys().chain(copy.keys()).collect();
    let mismatches: Vec<CountMismatch> = tables
        .into_iter()
        .filter_map(|table| {
            let (s, c) = (
                source.get(table).copied().unwrap_or(0),
                copy.get(table).copied().unwrap_or(0),
            );
            (s != c).then(|| CountMismatch {
                table: table.clone(),
                source: s,
                copy: c,
            })
        })
        .collect();
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches)
    }
}

// ------------------------------------------------------------------------------------------------
// Moving an org between shards (docs/scaling.md)

/// How a table's rows are found to be one org's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The column holds the org id.
    Org(&'static str),
    /// The column holds the id of one of the org's leads (a table without an org id column):
    /// its rows are the org's through `leads`.
    Lead(&'static str),
}

/// One tenant table as a shard move copies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveTable {
    pub name: &'static str,
    /// Every column, copied as is.
    pub columns: &'static [&'static str],
    /// The keyset a page is cut by: unique within the org, never NULL, and led (after the scope
    /// column) by an index where the table has one.
    pub key: &'static [&'static str],
    pub scope: Scope,
}

const fn table(
    name: &'static str,
    columns: &'static [&'static str],
    key: &'static [&'static str],
) -> MoveTable {
    MoveTable {
        name,
        columns,
        key,
        scope: Scope::Org("org_id"),
    }
}

/// Every table of the tenant schema (migrations/tenant), parents before children: copies run in
/// this order and deletes in the reverse one, so no foreign key is ever broken. `leads_fts` is not
/// here: the triggers on `leads` fill and empty it. tests/tests/schema.rs checks this list against
/// the schema (tables, columns, foreign-key order, keys).
pub const MOVE_TABLES: &[MoveTable] = &[
    MoveTable {
        name: "orgs",
        columns: &["id", "created_at", "updated_at"],
        key: &["id"],
        scope: Scope::Org("id"),
    },
    table(
        "scoring_configs",
        &[
            "org_id",
            "weights",
            "warm_threshold",
            "hot_threshold",
            "decay_half_life_days",
            "config_version",
            "updated_at",
        ],
        &["org_id"],
    ),
    table(
        "pipeline_stages",
        &[
            "id",
            "org_id",
            "name",
            "rank_key",
            "is_closed",
            "is_won",
            "created_at",
            "updated_at",
        ],
        &["id"],
    ),
    table(
        "custom_field_defs",
        &[
            "id",
            "org_id",
            "key",
            "label",
            "field_type",
            "options",
            "required",
            "created_at",
            "updated_at",
        ],
        &["key"],
    ),
    table(
        "leads",
        &[
            "id",
            "org_id",
            "first_name",
            "last_name",
            "email",
            "email_normalized",
            "phone",
            "phone_normalized",
            "company",
            "title",
            "source",
            "source_detail",
            "stage_id",
            "rank_key",
            "owner_id",
            "tags",
            "custom_fields",
            "heat_score",
            "heat_level",
            "heat_trend",
            "heat_stamp",
            "scored_at",
            "scored_config_version",
            "needs_rescore",
            "last_interaction_at",
            "created_at",
            "updated_at",
            "version",
            "heat_ref_at",
            "heat_settled",
            "heat_pending",
            "heat_next_pending_at",
        ],
        &["created_at", "id"],
    ),
    table(
        "lead_tags",
        &["org_id", "lead_id", "tag"],
        &["tag", "lead_id"],
    ),
    table(
        "social_profiles",
        &[
            "id",
            "org_id",
            "lead_id",
            "platform",
            "platform_user_id",
            "handle",
            "url",
            "created_at",
        ],
        &["platform", "platform_user_id"],
    ),
    table(
        "lead_merges",
        &["org_id", "merged_lead_id", "into_lead_id", "merged_at"],
        &["merged_lead_id"],
    ),
    table(
        "interactions",
        &[
            "id",
            "org_id",
            "lead_id",
            "type",
            "platform",
            "occurred_at",
            "captured_by",
            "points",
            "external_id",
            "metadata",
            "created_at",
        ],
        &["occurred_at", "id"],
    ),
    table(
        "heat_snapshots",
        &["lead_id", "day", "org_id", "score", "level"],
        &["day", "lead_id"],
    ),
    table(
        "heat_level_changes",
        &[
            "id",
            "org_id",
            "lead_id",
            "old_level",
            "new_level",
            "changed_at",
        ],
        &["id"],
    ),
    table(
        "integrations",
        &[
            "org_id",
            "platform",
            "token_ciphertext",
            "token_key_id",
            "status",
            "last_event_at",
            "last_error",
            "last_error_at",
            "metrics",
            "created_at",
            "updated_at",
        ],
        &["platform"],
    ),
    table(
        "pending_connections",
        &[
            "id",
            "org_id",
            "user_id",
            "platform",
            "candidates",
            "secrets_ciphertext",
            "token_key_id",
            "expires_at",
            "created_at",
        ],
        &["id"],
    ),
    table(
        "webhook_inbox",
        &[
            "id",
            "platform",
            "dedupe_key",
            "account_id",
            "org_id",
            "body",
            "received_at",
            "status",
            "attempts",
            "next_attempt_at",
            "lease_until",
            "last_error",
            "processed_at",
        ],
        &["id"],
    ),
    table(
        "platform_throttles",
        &[
            "org_id",
            "platform",
            "blocked_until",
            "consecutive_failures",
            "circuit_open_until",
            "last_usage",
            "updated_at",
        ],
        &["platform"],
    ),
    table(
        "idempotency_keys",
        &[
            "org_id",
            "user_id",
            "idem_key",
            "method",
            "path",
            "request_hash",
            "status_code",
            "response_body",
            "created_at",
        ],
        &["user_id", "idem_key"],
    ),
    table(
        "rescore_runs",
        &[
            "org_id",
            "status",
            "cursor_lead_id",
            "leads_done",
            "leads_total",
            "config_version",
            "requested_at",
            "started_at",
            "finished_at",
        ],
        &["org_id"],
    ),
    table(
        "tracking_visitors",
        &[
            "org_id",
            "visitor_id",
            "lead_id",
            "last_visit_touch_at",
            "first_seen_at",
            "last_seen_at",
        ],
        &["visitor_id"],
    ),
    table(
        "tracking_events",
        &[
            "id",
            "org_id",
            "visitor_id",
            "kind",
            "url",
            "occurred_at",
            "attributed",
        ],
        &["id"],
    ),
    table(
        "erasure_suppressions",
        &["org_id", "identity_hash", "erased_at"],
        &["identity_hash"],
    ),
    table(
        "erasure_inbox_scrubs",
        &["inbox_id", "org_id", "requested_at"],
        &["inbox_id"],
    ),
    table(
        "members",
        &[
            "org_id",
            "user_id",
            "name",
            "email",
            "role",
            "first_seen_at",
            "last_seen_at",
        ],
        &["user_id"],
    ),
    table(
        "scoring_backoff",
        &["org_id", "failures", "last_error", "failed_at", "retry_at"],
        &["org_id"],
    ),
];

/// Tenant tables a move does not copy, because they are derived from the moved ones: the
/// dashboard's rollups. Triggers on the base tables fill them on the target as the copy inserts
/// its rows, and empty them with the org row when a move clears a target or deletes its source.
/// tests/tests/schema.rs checks that every tenant table is moved or listed here.
pub const DERIVED_TABLES: &[&str] = &[
    "dashboard_lead_counts",
    "dashboard_lead_days",
    "dashboard_touch_days",
];

/// The move table named `name`.
pub fn move_table(name: &str) -> Option<&'static MoveTable> {
    MOVE_TABLES.iter().find(|table| table.name == name)
}

fn quoted(column: &str) -> String {
    format!("\"{column}\"")
}

fn column_list(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ")
}

impl MoveTable {
    /// The condition that picks the org's rows; the org id is `?1`.
    pub fn scope_sql(&self) -> String {
        match self.scope {
            Scope::Org(column) => format!("{} = ?1", quoted(column)),
            Scope::Lead(column) => format!(
                "{} IN (SELECT \"id\" FROM \"leads\" WHERE \"org_id\" = ?1)",
                quoted(column)
            ),
        }
    }

    /// One page of the org's rows in key order: `?1` the org id, then with `after` the key values
    /// of the last row of the previous page (`?2`...), then the page size. Returns the SQL and
    /// the position of the page size parameter.
    pub fn page_sql(&self, after: bool) -> (String, usize) {
        let key = column_list(self.key);
        let mut sql = format!(
            "SELECT {} FROM {} WHERE {}",
            column_list(self.columns),
            quoted(self.name),
            self.scope_sql()
        );
        let mut next = 2;
        if after {
            let params: Vec<String> = (0..self.key.len()).map(|i| format!("?{}", i + 2)).collect();
            sql.push_str(&format!(" AND ({key}) > ({})", params.join(", ")));
            next += self.key.len();
        }
        sql.push_str(&format!(" ORDER BY {key} LIMIT ?{next}"));
        (sql, next)
    }

    /// Inserts the rows of a JSON array (`?1`) of objects keyed by column name. A row that is
    /// there already (a page copied again after an interrupted step) is skipped; any other
    /// constraint failure fails the statement.
    pub fn insert_sql(&self) -> String {
        let values: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("json_extract(\"value\", '$.{c}')"))
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM json_each(?1) WHERE true ON CONFLICT DO NOTHING",
            quoted(self.name),
            column_list(self.columns),
            values.join(", ")
        )
    }

    /// Deletes up to `?2` of the org's rows (`?1`).
    pub fn delete_sql(&self) -> String {
        let key = column_list(self.key);
        let scope = self.scope_sql();
        format!(
            "DELETE FROM {table} WHERE {scope} AND ({key}) IN \
             (SELECT {key} FROM {table} WHERE {scope} LIMIT ?2)",
            table = quoted(self.name)
        )
    }
}

/// One query that counts the org's rows (`?1`) in every move table, one column per table.
pub fn count_sql() -> String {
    let columns: Vec<String> = MOVE_TABLES
        .iter()
        .map(|table| {
            format!(
                "(SELECT COUNT(*) FROM {} WHERE {}) AS {}",
                quoted(table.name),
                table.scope_sql(),
                quoted(table.name)
            )
        })
        .collect();
    format!("SELECT {}", columns.join(", "))
}

/// Where a move is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovePhase {
    Clearing,
    Copying,
    Verifying,
    Deleting,
    Done,
    Failed,
}

impl MovePhase {
    pub const ALL: [MovePhase; 6] = [
        MovePhase::Clearing,
        MovePhase::Copying,
        MovePhase::Verifying,
        MovePhase::Deleting,
        MovePhase::Done,
        MovePhase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MovePhase::Clearing => "clearing",
            MovePhase::Copying => "copying",
            MovePhase::Verifying => "verifying",
            MovePhase::Deleting => "deleting",
            MovePhase::Done => "done",
            MovePhase::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<MovePhase> {
        MovePhase::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, MovePhase::Done | MovePhase::Failed)
    }
}

/// Rows per table a move has handled so far, kept with its state (`org_moves.counts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MoveCounts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cleared: TableCounts,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub copied: TableCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TableCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<TableCounts>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted: TableCounts,
}

/// The durable state of a move (one `org_moves` row).
#[derive(Debug, Clone, PartialEq)]
pub struct MoveState {
    pub from_shard: u32,
    pub to_shard: u32,
    pub phase: MovePhase,
    pub table: Option<String>,
    /// While copying: the key of the last row copied of `table`.
    pub cursor: Option<Vec<serde_json::Value>>,
    pub counts: MoveCounts,
    /// Why the move failed (the verification's mismatches); set from the failed verification on,
    /// while the copy is deleted.
    pub error: Option<String>,
}

/// What the worker does next for a move.
#[derive(Debug, Clone, PartialEq)]
pub enum MoveStep {
    /// Delete a page of the org's rows of `table` on `shard`.
    Delete {
        shard: u32,
        table: &'static MoveTable,
    },
    /// Copy the page of `table` after `after` (from the start when `None`).
    Copy {
        table: &'static MoveTable,
        after: Option<Vec<serde_json::Value>>,
    },
    /// Count the org's rows on both shards and compare.
    Verify,
    /// Nothing: the move is finished.
    Finished,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// A delete removed `rows` rows, at most `limit`.
    Deleted { rows: u64, limit: u64 },
    /// A copy read `rows` rows (at most `limit`) and wrote them; `last` is the key of the last.
    Copied {
        rows: u64,
        limit: u64,
        last: Option<Vec<serde_json::Value>>,
    },
    /// The counts of both shards.
    Verified {
        source: TableCounts,
        copy: TableCounts,
    },
}

/// Whether a move from `from` to `to` can start for an org on `from` among `shard_count` shards.
pub fn check_target(from: u32, to: i64, shard_count: u32) -> Result<u32, String> {
    if to < 0 || to >= i64::from(shard_count) {
        return Err(format!(
            "shard {to} does not exist: the shards are 0 to {}",
            shard_count.saturating_sub(1)
        ));
    }
    let to = to as u32;
    if to == from {
        return Err(format!("the org already lives on shard {from}"));
    }
    Ok(to)
}

fn first_of(phase: MovePhase) -> Option<&'static MoveTable> {
    match phase {
        MovePhase::Copying => MOVE_TABLES.first(),
        MovePhase::Clearing | MovePhase::Deleting => MOVE_TABLES.last(),
        _ => None,
    }
}

/// The table after `current` in the phase's order (forward for copies, backward for deletes).
fn next_of(phase: MovePhase, current: &str) -> Option<&'static MoveTable> {
    let index = MOVE_TABLES.iter().position(|t| t.name == current)?;
    match phase {
        MovePhase::Copying => MOVE_TABLES.get(index + 1),
        _ => index.checked_sub(1).map(|i| &MOVE_TABLES[i]),
    }
}

impl MoveState {
    /// A new move: it starts by clearing what an earlier attempt may have left on the target.
    pub fn start(from_shard: u32, to_shard: u32) -> MoveState {
        MoveState {
            from_shard,
            to_shard,
            phase: MovePhase::Clearing,
            table: first_of(MovePhase::Clearing).map(|t| t.name.to_string()),
            cursor: None,
            counts: MoveCounts::default(),
            error: None,
        }
    }

    /// The shard a deleting move deletes from: the source once the directory points at the copy,
    /// the copy when the verification failed (the org stayed home).
    pub fn deleting_from(&self) -> u32 {
        if self.error.is_some() {
            self.to_shard
        } else {
            self.from_shard
        }
    }

    /// Whether the org's directory entry points at the target (the move was verified).
    pub fn flipped(&self) -> bool {
        self.error.is_none() && matches!(self.phase, MovePhase::Deleting | MovePhase::Done)
    }

    fn current_table(&self) -> Option<&'static MoveTable> {
        self.table.as_deref().and_then(move_table)
    }

    /// The next step. A state naming a table the list lacks (a table removed since it was
    /// written) goes on from the start of its phase's walk; the walk is idempotent.
    pub fn next_step(&self) -> MoveStep {
        let table = self.current_table().or_else(|| first_of(self.phase));
        match (self.phase, table) {
            (MovePhase::Clearing, Some(table)) => MoveStep::Delete {
                shard: self.to_shard,
                table,
            },
            (MovePhase::Copying, Some(table)) => MoveStep::Copy {
                table,
                after: self.cursor.clone(),
            },
            (MovePhase::Deleting, Some(table)) => MoveStep::Delete {
                shard: self.deleting_from(),
                table,
            },
            (MovePhase::Verifying, _) => MoveStep::Verify,
            _ => MoveStep::Finished,
        }
    }

    /// Moves to the next table of the walk, or to the next phase after the last.
    fn next_table_or(&mut self, then: MovePhase) {
        let next = self.table.as_deref().and_then(|t| next_of(self.phase, t));
        self.cursor = None;
        match next {
            Some(table) => self.table = Some(table.name.to_string()),
            None => {
                self.phase = then;
                self.table = first_of(then).map(|t| t.name.to_string());
            }
        }
    }

    /// The state after `outcome` of the current step. The outcome of a verification decides
    /// between the flip (the caller points the directory at the target in the same transaction as
    /// it saves this state) and the failure (the caller clears `moving_to` instead).
    pub fn advance(mut self, outcome: StepOutcome) -> MoveState {
        if self.table.is_none() {
            self.table = first_of(self.phase).map(|t| t.name.to_string());
        }
        let table = self.table.clone().unwrap_or_default();
        match (self.phase, outcome) {
            (MovePhase::Clearing | MovePhase::Deleting, StepOutcome::Deleted { rows, limit }) => {
                let tally = if self.phase == MovePhase::Clearing {
                    &mut self.counts.cleared
                } else {
                    &mut self.counts.deleted
                };
                if rows > 0 {
                    *tally.entry(table).or_default() += rows;
                }
                if rows < limit {
                    let then = match self.phase {
                        MovePhase::Clearing => MovePhase::Copying,
                        _ if self.error.is_some() => MovePhase::Failed,
                        _ => MovePhase::Done,
                    };
                    self.next_table_or(then);
                }
            }
            (MovePhase::Copying, StepOutcome::Copied { rows, limit, last }) => {
                if rows > 0 {
                    *self.counts.copied.entry(table).or_default() += rows;
                }
                if rows < limit {
                    self.next_table_or(MovePhase::Verifying);
                } else {
                    self.cursor = last;
                }
            }
            (MovePhase::Verifying, StepOutcome::Verified { source, copy }) => {
                if let Err(mismatches) = verify_copy(&source, &copy) {
                    self.error = Some(
                        mismatches
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                self.counts.source = Some(source);
                self.counts.copy = Some(copy);
                self.phase = MovePhase::Deleting;
                self.table = first_of(MovePhase::Deleting).map(|t| t.name.to_string());
                self.cursor = None;
            }
            // An outcome of another step than the current one changes nothing.
            _ => {}
        }
        self
    }
}

/// Milliseconds left of the grace period after a move started (0 once it is over): requests that
/// bound the org's tenant just before the move began finish their writes meanwhile, and the copy
/// starts only after it.
pub fn grace_left_ms(started_ms: i64, grace_secs: u64, now_ms: i64) -> i64 {
    (started_ms + (grace_secs as i64) * 1000 - now_ms).max(0)
}

/// The grace period of a move from the `MOVE_GRACE_SECONDS` var (default 30 s, at most an hour).
pub fn grace_secs_from_var(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_MOVE_GRACE_SECS, |v| v.min(3600))
}

pub const DEFAULT_MOVE_GRACE_SECS: u64 = 30;

/// Whether the operator's bearer token is the configured one. Both are hashed first, so the
/// comparison is in constant time whatever their lengths; an empty configured token admits no one.
pub fn ops_token_matches(presented: Option<&str>, configured: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let Some(presented) = presented else {
        return false;
    };
    if configured.is_empty() {
        return false;
    }
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(configured.as_bytes()),
    );
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load(shard: u32, orgs: u64) -> ShardLoad {
        ShardLoad { shard, orgs }
    }

    #[test]
    fn a_new_org_goes_to_the_shard_with_the_fewest_orgs() {
        assert_eq!(least_loaded(&[load(0, 3), load(1, 2)], 2), 1);
        assert_eq!(least_loaded(&[load(0, 2), load(1, 2)], 2), 0);
        // An empty or missing shard wins; shards beyond the bound ones are ignored.
        assert_eq!(least_loaded(&[load(0, 1), load(1, 1)], 3), 2);
        assert_eq!(least_loaded(&[load(5, 0), load(0, 4)], 2), 1);
        assert_eq!(least_loaded(&[], 4), 0);
    }

    proptest! {
        #[test]
        fn placing_orgs_one_by_one_keeps_shards_within_one_org(count in 1u32..8, orgs in 0usize..200) {
            let mut loads: Vec<ShardLoad> = (0..count).map(|shard| load(shard, 0)).collect();
            for _ in 0..orgs {
                let shard = least_loaded(&loads, count);
                prop_assert!(shard < count);
                loads[shard as usize].orgs += 1;
            }
            let max = loads.iter().map(|l| l.orgs).max().unwrap();
            let min = loads.iter().map(|l| l.orgs).min().unwrap();
            prop_assert!(max - min <= 1);
        }
    }

    #[test]
    fn a_copy_is_verified_table_by_table() {
        let source: TableCounts =
            [("leads".to_string(), 3), ("interactions".to_string(), 9)].into();
        assert_eq!(verify_copy(&source, &source.clone()), Ok(()));
        let mut short = source.clone();
        short.insert("interactions".to_string(), 8);
        short.insert("lead_tags".to_string(), 1);
        assert_eq!(
            verify_copy(&source, &short),
            Err(vec![
                CountMismatch {
                    table: "interactions".into(),
                    source: 9,
                    copy: 8
                },
                CountMismatch {
                    table: "lead_tags".into(),
                    source: 0,
                    copy: 1
                },
            ])
        );
    }

    /// Runs a move's state machine with every table holding `rows` rows, in pages of `limit`.
    fn walk(mut state: MoveState, rows: u64, limit: u64, fail: bool) -> (MoveState, Vec<String>) {
        let mut trace = Vec::new();
        let mut left: BTreeMap<(u32, &str), u64> = BTreeMap::new();
        for t in MOVE_TABLES {
            left.insert((state.from_shard, t.name), rows);
            left.insert((state.to_shard, t.name), 1); // leftovers of an earlier attempt
        }
        for _ in 0..10_000 {
            let step = state.next_step();
            let outcome = match &step {
                MoveStep::Finished => return (state, trace),
                MoveStep::Delete { shard, table } => {
                    trace.push(format!(
                        "{} delete {} on {shard}",
                        state.phase.as_str(),
                        table.name
                    ));
                    let here = left.get_mut(&(*shard, table.name)).unwrap();
                    let deleted = (*here).min(limit);
                    *here -= deleted;
                    StepOutcome::Deleted {
                        rows: deleted,
                        limit,
                    }
                }
                MoveStep::Copy { table, after } => {
                    let done = after.as_ref().map_or(0, |a| a[0].as_u64().unwrap());
                    let source = left[&(state.from_shard, table.name)];
                    let page = (source - done).min(limit);
                    *left.get_mut(&(state.to_shard, table.name)).unwrap() += page;
                    trace.push(format!("copy {} after {done}", table.name));
                    StepOutcome::Copied {
                        rows: page,
                        limit,
                        last: Some(vec![serde_json::json!(done + page)]),
                    }
                }
                MoveStep::Verify => {
                    trace.push("verify".into());
                    let count = |shard: u32| -> TableCounts {
                        MOVE_TABLES
                            .iter()
                            .map(|t| (t.name.to_string(), left[&(shard, t.name)]))
                            .collect()
                    };
                    let mut copy = count(state.to_shard);
                    if fail {
                        *copy.get_mut("lead_tags").unwrap() -= 1;
                    }
                    StepOutcome::Verified {
                        source: count(state.from_shard),
                        copy,
                    }
                }
            };
            state = state.advance(outcome);
        }
        panic!("the move never finished: {state:?}");
    }

    #[test]
    fn a_move_clears_the_target_copies_parents_first_verifies_then_deletes_children_first() {
        let (state, trace) = walk(MoveState::start(0, 1), 5, 2, false);
        assert_eq!(state.phase, MovePhase::Done);
        assert!(state.flipped() && state.error.is_none());
        let position = |line: &str| trace.iter().position(|l| l == line).unwrap();
        // Clearing the target before anything is copied, children first.
        assert!(
            position("clearing delete leads on 1") > position("clearing delete interactions on 1")
        );
        assert!(position("clearing delete orgs on 1") < position("copy orgs after 0"));
        // Copies parents first, in pages: 5 rows in pages of 2 is 3 pages.
        assert!(position("copy leads after 0") > position("copy pipeline_stages after 4"));
        assert!(trace.contains(&"copy leads after 4".to_string()));
        assert!(!trace.contains(&"copy leads after 6".to_string()));
        // Verified, then the source is deleted, children first.
        assert!(position("verify") < position("deleting delete interactions on 0"));
        assert!(
            position("deleting delete interactions on 0") < position("deleting delete leads on 0")
        );
        let counts = &state.counts;
        assert_eq!(counts.copied["interactions"], 5);
        assert_eq!(counts.cleared["interactions"], 1);
        assert_eq!(counts.deleted["interactions"], 5);
        assert_eq!(counts.source, counts.copy);
    }

    #[test]
    fn a_failed_verification_deletes_the_copy_and_leaves_the_org_home() {
        let (state, trace) = walk(MoveState::start(1, 0), 3, 10, true);
        assert_eq!(state.phase, MovePhase::Failed);
        assert!(!state.flipped());
        assert_eq!(
            state.error.as_deref(),
            Some("lead_tags: 3 rows at the source, 2 in the copy")
        );
        assert!(trace.iter().any(|l| l == "deleting delete leads on 0"));
        assert!(!trace
            .iter()
            .any(|l| l.starts_with("deleting") && l.ends_with("on 1")));
    }

    #[test]
    fn finished_moves_do_nothing_and_stray_outcomes_change_nothing() {
        let mut state = MoveState::start(0, 1);
        state.phase = MovePhase::Done;
        state.table = None;
        assert_eq!(state.next_step(), MoveStep::Finished);
        let copying = MoveState {
            phase: MovePhase::Copying,
            table: Some("leads".into()),
            ..MoveState::start(0, 1)
        };
        assert_eq!(
            copying
                .clone()
                .advance(StepOutcome::Deleted { rows: 0, limit: 5 }),
            copying
        );
    }

    #[test]
    fn a_target_must_be_another_bound_shard() {
        assert_eq!(check_target(0, 1, 2), Ok(1));
        assert!(check_target(0, 0, 2).unwrap_err().contains("already lives"));
        assert!(check_target(0, 2, 2)
            .unwrap_err()
            .contains("does not exist"));
        assert!(check_target(0, -1, 2).is_err());
    }

    #[test]
    fn phases_round_trip_and_the_grace_period_counts_down() {
        for phase in MovePhase::ALL {
            assert_eq!(MovePhase::parse(phase.as_str()), Some(phase));
        }
        assert_eq!(MovePhase::parse("moving"), None);
        assert_eq!(grace_left_ms(1_000, 5, 2_000), 4_000);
        assert_eq!(grace_left_ms(1_000, 5, 9_000), 0);
        assert_eq!(grace_secs_from_var(None), DEFAULT_MOVE_GRACE_SECS);
        assert_eq!(grace_secs_from_var(Some("0")), 0);
        assert_eq!(grace_secs_from_var(Some("x")), DEFAULT_MOVE_GRACE_SECS);
    }

    #[test]
    fn the_ops_token_must_match_exactly() {
        assert!(ops_token_matches(Some("s3cret"), "s3cret"));
        assert!(!ops_token_matches(Some("s3cre"), "s3cret"));
        assert!(!ops_token_matches(None, "s3cret"));
        assert!(!ops_token_matches(Some(""), ""));
    }

    #[test]
    fn move_sql_pages_by_key_and_scopes_by_org() {
        let leads = move_table("leads").unwrap();
        let (first, limit_at) = leads.page_sql(false);
        assert_eq!(limit_at, 2);
        assert!(first.ends_with("WHERE \"org_id\" = ?1 ORDER BY \"created_at\", \"id\" LIMIT ?2"));
        let (next, limit_at) = leads.page_sql(true);
        assert_eq!(limit_at, 4);
        assert!(next.contains("AND (\"created_at\", \"id\") > (?2, ?3) ORDER BY"));
        let by_lead = MoveTable {
            scope: Scope::Lead("lead_id"),
            ..*move_table("lead_tags").unwrap()
        };
        assert!(by_lead
            .scope_sql()
            .contains("\"lead_id\" IN (SELECT \"id\" FROM \"leads\" WHERE \"org_id\" = ?1)"));
        assert!(move_table("orgs")
            .unwrap()
            .delete_sql()
            .contains("\"id\" = ?1"));
        assert!(count_sql()
            .contains("(SELECT COUNT(*) FROM \"erasure_inbox_scrubs\" WHERE \"org_id\" = ?1)"));
    }
}
