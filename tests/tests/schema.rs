//! The D1 schemas, checked natively (no runtime, milliseconds). There are two migration sets, each
//! applied to its own in-memory SQLite exactly as wrangler splits and sends it: `migrations/tenant`
//! (every shard, SHARD_k) and `migrations/directory` (the directory, DB). Then each schema's
//! contract — table and column names, STRICT tables, uniqueness and CHECK rules, cascades, the
//! full-text index triggers —, how the two sets divide the tables between them, and the query
//! plans of the queries the workers run (each must read an index, not the table).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use leadheat_domain::ranking;
use leadheat_domain::rescoring::RescoreRunStatus;
use leadheat_domain::sync::{InboxStatus, IntegrationStatus};
use leadheat_domain::types::{
    CapturedBy, FieldType, HeatLevel, InteractionType, Platform, Role, Source,
};
use rusqlite::{Batch, Connection, ErrorCode};

// ---------------------------------------------------------------------------------------------
// Applying the migrations

fn migrations_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations")
}

/// The two migration sets: each is the `migrations_dir` of some D1 bindings in wrangler.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// `migrations/tenant`: every shard (SHARD_0 ... SHARD_{N-1}), one org's data per row.
    Tenant,
    /// `migrations/directory`: the directory (DB), where orgs live and what is no single org's.
    Directory,
}

const SETS: [Set; 2] = [Set::Tenant, Set::Directory];

impl Set {
    fn dir(self) -> PathBuf {
        migrations_root().join(match self {
            Set::Tenant => "tenant",
            Set::Directory => "directory",
        })
    }
}

fn sql_files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the migrations folder {dir:?} exists: {e}"))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files
}

/// Every `.sql` file of a set, in name order (the order wrangler applies them in).
fn migration_files(set: Set) -> Vec<PathBuf> {
    let files = sql_files_in(&set.dir());
    assert!(!files.is_empty(), "no migrations in {:?}", set.dir());
    files
}

/// The migrations of both sets.
fn all_migration_files() -> Vec<PathBuf> {
    SETS.iter().flat_map(|&set| migration_files(set)).collect()
}

/// Splits a migration into statements the way wrangler does before sending them to D1 (a port of
/// `splitSqlIntoStatements` in wrangler's src/d1/splitter.ts): quotes and comments are skipped,
/// `;` ends a statement except inside a compound statement, which starts at a whitespace-delimited
/// `BEGIN` or `CASE` (any case) and ends at `END` followed by `;` or whitespace (upper case only).
/// Applying the pieces one by one here catches a file that SQLite accepts whole but that D1 would
/// receive cut in the wrong places.
fn split_like_wrangler(sql: &str) -> Vec<String> {
    fn compound_start(s: &str) -> bool {
        let Some(last) = s.chars().last().filter(|c| c.is_whitespace()) else {
            return false;
        };
        let body = &s[..s.len() - last.len_utf8()];
        ["BEGIN", "CASE"].iter().any(|keyword| {
            body.len() > keyword.len()
                && body.is_char_boundary(body.len() - keyword.len())
                && body[body.len() - keyword.len()..].eq_ignore_ascii_case(keyword)
                && body[..body.len() - keyword.len()]
                    .chars()
                    .last()
                    .is_some_and(char::is_whitespace)
        })
    }
    fn compound_end(s: &str) -> bool {
        let Some(last) = s.chars().last().filter(|&c| c == ';' || c.is_whitespace()) else {
            return false;
        };
        let body = &s[..s.len() - last.len_utf8()];
        body.strip_suffix("END")
            .and_then(|before| before.chars().last())
            .is_some_and(char::is_whitespace)
    }
    fn is_dollar_identifier(c: char) -> bool {
        c != '$' && (c.is_ascii_digit() || c == '_' || c.to_lowercase().ne(c.to_uppercase()))
    }

    let chars: Vec<char> = sql.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut open_compounds = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if open_compounds > 0 && compound_end(&format!("{current}{c}")) {
            open_compounds -= 1;
        }
        match c {
            '\'' | '"' | '`' => {
                current.push(c);
                i += 1;
                while i < chars.len() {
                    current.push(chars[i]);
                    if chars[i] == c {
                        break;
                    }
                    i += 1;
                }
            }
            '$' => {
                let mut tag = String::from("$");
                i += 1;
                while i < chars.len() {
                    tag.push(chars[i]);
                    if !is_dollar_identifier(chars[i]) {
                        break;
                    }
                    i += 1;
                }
                current.push_str(&tag);
                if tag.len() > 1 && tag.ends_with('$') {
                    let mut quoted = String::new();
                    while i + 1 < chars.len() && !quoted.ends_with(&tag) {
                        i += 1;
                        quoted.push(chars[i]);
                    }
                    current.push_str(&quoted);
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                current.push('\n');
            }
            '-' => {
                // wrangler appends a lone `-` and skips its compound-statement check.
                current.push(c);
                i += 1;
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                let opened = i;
                while i < chars.len() && !(i > opened && chars[i - 1] == '*' && chars[i] == '/') {
                    i += 1;
                }
            }
            ';' if open_compounds == 0 => statements.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
        if compound_start(&current) {
            open_compounds += 1;
        }
        i += 1;
    }
    statements.push(current);
    statements
        .into_iter()
        .map(|statement| statement.trim().to_string())
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// A fresh in-memory database with foreign keys enforced (as D1 does) and every migration of
/// `set` applied statement by statement, each piece required to be exactly one complete statement.
fn apply(set: Set) -> Connection {
    let conn = Connection::open_in_memory().expect("an in-memory database opens");
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys on");
    for file in migration_files(set) {
        let sql = fs::read_to_string(&file).expect("the migration is readable");
        for piece in split_like_wrangler(&sql) {
            let mut batch = Batch::new(&conn, &piece);
            let mut count = 0;
            while let Some(mut statement) = batch
                .next()
                .unwrap_or_else(|e| panic!("{file:?}: {e}\nin the statement:\n{piece}"))
            {
                statement
                    .raw_execute()
                    .unwrap_or_else(|e| panic!("{file:?}: {e}\nin the statement:\n{piece}"));
                count += 1;
            }
            assert_eq!(
                count, 1,
                "{file:?}: wrangler would send this as one statement:\n{piece}"
            );
        }
    }
    conn
}

/// A fresh shard: the tenant set applied.
fn db() -> Connection {
    apply(Set::Tenant)
}

/// A fresh directory: the directory set applied.
fn directory() -> Connection {
    apply(Set::Directory)
}

// ---------------------------------------------------------------------------------------------
// Rows, counts and constraint errors

const T0: &str = "'2026-11-25T10:00:00.000Z'";

/// A valid row of one table, as `(column, SQL literal)` pairs; tests override single columns.
type Row = &'static [(&'static str, &'static str)];

// Tenant rows (a shard's tables).
const ORG_A: Row = &[("id", "'org_a'"), ("created_at", T0), ("updated_at", T0)];
const ORG_B: Row = &[("id", "'org_b'"), ("created_at", T0), ("updated_at", T0)];
const SCORING_CONFIG: Row = &[
    ("org_id", "'org_a'"),
    ("weights", r#"'{"social_like":1,"site_visit":10}'"#),
    ("warm_threshold", "6"),
    ("hot_threshold", "16"),
    ("updated_at", T0),
];
const STAGE: Row = &[
    ("id", "'stg_new'"),
    ("org_id", "'org_a'"),
    ("name", "'New'"),
    ("rank_key", "'V'"),
    ("created_at", T0),
    ("updated_at", T0),
];
const CUSTOM_FIELD: Row = &[
    ("id", "'cf_budget'"),
    ("org_id", "'org_a'"),
    ("key", "'budget'"),
    ("label", "'Budget'"),
    ("field_type", "'number'"),
    ("created_at", T0),
    ("updated_at", T0),
];
const LEAD: Row = &[
    ("id", "'lead_1'"),
    ("org_id", "'org_a'"),
    ("first_name", "'Jane'"),
    ("last_name", "'Doe'"),
    ("email", "'Jane.Doe@Example.com'"),
    ("email_normalized", "'jane.doe@example.com'"),
    ("company", "'Acme'"),
    ("source", "'website'"),
    ("created_at", T0),
    ("updated_at", T0),
];
const LEAD_TAG: Row = &[
    ("org_id", "'org_a'"),
    ("lead_id", "'lead_1'"),
    ("tag", "'vip'"),
];
const SOCIAL_PROFILE: Row = &[
    ("id", "'sp_1'"),
    ("org_id", "'org_a'"),
    ("lead_id", "'lead_1'"),
    ("platform", "'facebook'"),
    ("platform_user_id", "'10001'"),
    ("created_at", T0),
];
const LEAD_MERGE: Row = &[
    ("org_id", "'org_a'"),
    ("merged_lead_id", "'lead_0'"),
    ("into_lead_id", "'lead_1'"),
    ("merged_at", T0),
];
const INTERACTION: Row = &[
    ("id", "'ix_1'"),
    ("org_id", "'org_a'"),
    ("lead_id", "'lead_1'"),
    ("type", "'social_like'"),
    ("platform", "'facebook'"),
    ("occurred_at", T0),
    ("captured_by", "'webhook'"),
    ("points", "1"),
    ("external_id", "'fb:like:1'"),
    ("created_at", T0),
];
const SNAPSHOT: Row = &[
    ("lead_id", "'lead_1'"),
    ("day", "'2026-11-25'"),
    ("org_id", "'org_a'"),
    ("score", "1"),
    ("level", "'COLD'"),
];
const LEVEL_CHANGE: Row = &[
    ("id", "'hlc_1'"),
    ("org_id", "'org_a'"),
    ("lead_id", "'lead_1'"),
    ("old_level", "'COLD'"),
    ("new_level", "'WARM'"),
    ("changed_at", T0),
];
const INTEGRATION: Row = &[
    ("org_id", "'org_a'"),
    ("platform", "'facebook'"),
    ("status", "'needs_token'"),
    ("created_at", T0),
    ("updated_at", T0),
];
const PENDING_CONNECTION: Row = &[
    ("id", "'pend_1'"),
    ("org_id", "'org_a'"),
    ("user_id", "'user_1'"),
    ("platform", "'facebook'"),
    ("candidates", "'[]'"),
    ("secrets_ciphertext", "'v1.k.n.c'"),
    ("token_key_id", "'k'"),
    ("expires_at", T0),
    ("created_at", T0),
];
const INBOX_EVENT: Row = &[
    ("id", "'evt_1'"),
    ("platform", "'facebook'"),
    ("dedupe_key", "'page_1:feed:reaction:1'"),
    ("body", "'{}'"),
    ("received_at", T0),
    ("status", "'pending'"),
];
const THROTTLE: Row = &[
    ("org_id", "'org_a'"),
    ("platform", "'facebook'"),
    ("updated_at", T0),
];
const IDEMPOTENCY_KEY: Row = &[
    ("org_id", "'org_a'"),
    ("user_id", "'user_1'"),
    ("idem_key", "'key-1'"),
    ("method", "'POST'"),
    ("path", "'/v1/leads'"),
    ("request_hash", "'abc'"),
    ("status_code", "201"),
    ("response_body", "'{}'"),
    ("created_at", T0),
];
const RESCORE_RUN: Row = &[
    ("org_id", "'org_a'"),
    ("status", "'queued'"),
    ("config_version", "2"),
    ("requested_at", T0),
];
const VISITOR: Row = &[
    ("org_id", "'org_a'"),
    ("visitor_id", "'v_1'"),
    ("lead_id", "'lead_1'"),
    ("first_seen_at", T0),
    ("last_seen_at", T0),
];
const TRACKING_EVENT: Row = &[
    ("id", "'te_1'"),
    ("org_id", "'org_a'"),
    ("visitor_id", "'v_1'"),
    ("kind", "'page_view'"),
    ("occurred_at", T0),
];
const SUPPRESSION: Row = &[
    ("org_id", "'org_a'"),
    (
        "identity_hash",
        "'0000000000000000000000000000000000000000000000000000000000000000'",
    ),
    ("erased_at", T0),
];
const INBOX_SCRUB: Row = &[
    ("inbox_id", "'evt_1'"),
    ("org_id", "'org_a'"),
    ("requested_at", T0),
];
const MEMBER: Row = &[
    ("org_id", "'org_a'"),
    ("user_id", "'user_1'"),
    ("name", "'Ana Lima'"),
    ("email", "'ana@example.com'"),
    ("role", "'member'"),
    ("first_seen_at", T0),
    ("last_seen_at", T0),
];
const SCORING_BACKOFF: Row = &[
    ("org_id", "'org_a'"),
    ("failures", "2"),
    ("last_error", "'D1 refused the batch'"),
    ("failed_at", T0),
    ("retry_at", T0),
];

// Directory rows.
const DIRECTORY_ORG_A: Row = &[
    ("id", "'org_a'"),
    ("shard", "0"),
    ("site_key", "'site_a'"),
    ("created_at", T0),
    ("updated_at", T0),
];
const DIRECTORY_ORG_B: Row = &[
    ("id", "'org_b'"),
    ("shard", "1"),
    ("site_key", "'site_b'"),
    ("ready", "1"),
    ("created_at", T0),
    ("updated_at", T0),
];
const INTEGRATION_ACCOUNT: Row = &[
    ("platform", "'facebook'"),
    ("account_id", "'page_1'"),
    ("org_id", "'org_a'"),
    ("kind", "'page'"),
    ("created_at", T0),
];
const UNROUTED: Row = &[
    ("platform", "'facebook'"),
    ("dedupe_key", "'0f1e2d'"),
    ("account_id", "'page_9'"),
    ("received_at", T0),
];
const RATE_LIMIT: Row = &[
    ("bucket", "'track:site_a'"),
    ("window_start", T0),
    ("count", "1"),
];
const JOB_LEASE: Row = &[
    ("name", "'scoring'"),
    ("holder", "'run_1'"),
    ("lease_until", T0),
];
const ORG_MOVE: Row = &[
    ("org_id", "'org_b'"),
    ("from_shard", "1"),
    ("to_shard", "0"),
    ("phase", "'copying'"),
    ("current_table", "'leads'"),
    ("cursor", r#"'["2026-11-25T10:00:00.000Z","lead_1"]'"#),
    ("counts", r#"'{"copied":{"orgs":1}}'"#),
    ("started_at", T0),
    ("updated_at", T0),
];
const JOB_RUN: Row = &[
    ("id", "'run_1'"),
    ("job", "'scoring'"),
    ("cron", "'*/15 * * * *'"),
    ("started_at", T0),
    ("finished_at", T0),
    ("summary", r#"'{"finished":true}'"#),
];

/// Inserts `base` with `overrides` replacing (or adding) columns.
fn insert(
    conn: &Connection,
    table: &str,
    base: Row,
    overrides: &[(&str, &str)],
) -> rusqlite::Result<usize> {
    let mut row: Vec<(&str, &str)> = base.to_vec();
    for &(column, value) in overrides {
        match row.iter_mut().find(|(name, _)| *name == column) {
            Some(slot) => slot.1 = value,
            None => row.push((column, value)),
        }
    }
    let columns: Vec<&str> = row.iter().map(|(column, _)| *column).collect();
    let values: Vec<&str> = row.iter().map(|(_, value)| *value).collect();
    conn.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            values.join(", ")
        ),
        [],
    )
}

#[track_caller]
fn insert_ok(conn: &Connection, table: &str, base: Row, overrides: &[(&str, &str)]) {
    if let Err(e) = insert(conn, table, base, overrides) {
        panic!("inserting into {table} with {overrides:?} failed: {e}");
    }
}

/// A shard with two orgs and one lead (`lead_1` of `org_a`).
fn seeded() -> Connection {
    let conn = db();
    insert_ok(&conn, "orgs", ORG_A, &[]);
    insert_ok(&conn, "orgs", ORG_B, &[]);
    insert_ok(&conn, "leads", LEAD, &[]);
    conn
}

/// A directory with two orgs (`org_a` on shard 0, not ready yet; `org_b` on shard 1).
fn directory_seeded() -> Connection {
    let conn = directory();
    insert_ok(&conn, "orgs", DIRECTORY_ORG_A, &[]);
    insert_ok(&conn, "orgs", DIRECTORY_ORG_B, &[]);
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Asserts that `result` failed on a constraint of `kind` (`UNIQUE`, `CHECK`, `FOREIGN KEY`,
/// `NOT NULL`), as SQLite (and D1) names it in the message.
#[track_caller]
fn assert_violates<T: std::fmt::Debug>(result: rusqlite::Result<T>, kind: &str) {
    match &result {
        Err(rusqlite::Error::SqliteFailure(error, Some(message)))
            if error.code == ErrorCode::ConstraintViolation
                && message.contains(&format!("{kind} constraint failed")) => {}
        _ => panic!("expected a {kind} constraint violation, got {result:?}"),
    }
}

/// Asserts that inserting `base` with one column replaced by `bad` is refused by a CHECK.
#[track_caller]
fn assert_check_rejects(conn: &Connection, table: &str, base: Row, column: &str, bad: &str) {
    let result = insert(conn, table, base, &[(column, bad)]);
    match &result {
        Err(rusqlite::Error::SqliteFailure(error, Some(message)))
            if error.code == ErrorCode::ConstraintViolation
                && message.contains("CHECK constraint failed") => {}
        _ => panic!("{table}.{column} = {bad}: expected a CHECK violation, got {result:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tables, columns, enums, keys

/// The contract other code is written against: every table of a shard and its columns.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("orgs", "id created_at updated_at"),
    (
        "scoring_configs",
        "org_id weights warm_threshold hot_threshold decay_half_life_days config_version \
         updated_at",
    ),
    (
        "pipeline_stages",
        "id org_id name rank_key is_closed is_won created_at updated_at",
    ),
    (
        "leads",
        "id org_id first_name last_name email email_normalized phone phone_normalized \
         company title source source_detail stage_id rank_key owner_id tags custom_fields \
         heat_score heat_level heat_trend heat_stamp scored_at scored_config_version \
         needs_rescore last_interaction_at created_at updated_at version heat_ref_at heat_settled \
         heat_pending heat_next_pending_at",
    ),
    ("lead_tags", "org_id lead_id tag"),
    (
        "social_profiles",
        "id org_id lead_id platform platform_user_id handle url created_at",
    ),
    (
        "custom_field_defs",
        "id org_id key label field_type options required created_at updated_at",
    ),
    (
        "interactions",
        "id org_id lead_id type platform occurred_at captured_by points external_id \
         metadata created_at",
    ),
    ("heat_snapshots", "lead_id day org_id score level"),
    (
        "heat_level_changes",
        "id org_id lead_id old_level new_level changed_at",
    ),
    (
        "lead_merges",
        "org_id merged_lead_id into_lead_id merged_at",
    ),
    (
        "integrations",
        "org_id platform token_ciphertext token_key_id status last_event_at last_error \
         last_error_at metrics created_at updated_at",
    ),
    (
        "pending_connections",
        "id org_id user_id platform candidates secrets_ciphertext token_key_id expires_at \
         created_at",
    ),
    (
        "webhook_inbox",
        "id platform dedupe_key account_id org_id body received_at status attempts \
         next_attempt_at lease_until last_error processed_at",
    ),
    (
        "platform_throttles",
        "org_id platform blocked_until consecutive_failures circuit_open_until last_usage \
         updated_at",
    ),
    (
        "idempotency_keys",
        "org_id user_id idem_key method path request_hash status_code response_body created_at",
    ),
    (
        "rescore_runs",
        "org_id status cursor_lead_id leads_done leads_total config_version requested_at \
         started_at finished_at",
    ),
    (
        "tracking_visitors",
        "org_id visitor_id lead_id last_visit_touch_at first_seen_at last_seen_at",
    ),
    (
        "tracking_events",
        "id org_id visitor_id kind url occurred_at attributed",
    ),
    ("erasure_suppressions", "org_id identity_hash erased_at"),
    ("erasure_inbox_scrubs", "inbox_id org_id requested_at"),
    (
        "dashboard_lead_counts",
        "org_id heat_level source stage_id n",
    ),
    ("dashboard_lead_days", "org_id day created hot_net"),
    ("dashboard_touch_days", "org_id day platform type n"),
    (
        "members",
        "org_id user_id name email role first_seen_at last_seen_at",
    ),
    (
        "scoring_backoff",
        "org_id failures last_error failed_at retry_at",
    ),
];

/// Every table of the directory and its columns.
const DIRECTORY_TABLES: &[(&str, &str)] = &[
    (
        "orgs",
        "id shard site_key ready moving_to created_at updated_at",
    ),
    (
        "integration_accounts",
        "platform account_id org_id kind created_at",
    ),
    (
        "webhook_unrouted",
        "platform dedupe_key account_id received_at",
    ),
    ("rate_limits", "bucket window_start count"),
    ("job_leases", "name holder lease_until"),
    ("job_runs", "id job cron started_at finished_at summary"),
    (
        "org_moves",
        "org_id from_shard to_shard phase current_table cursor counts error started_at updated_at \
         finished_at",
    ),
];

/// A set's applied schema and its table contract.
fn schema(set: Set) -> (Connection, &'static [(&'static str, &'static str)]) {
    match set {
        Set::Tenant => (db(), TENANT_TABLES),
        Set::Directory => (directory(), DIRECTORY_TABLES),
    }
}

/// Ordinary tables of the schema (not SQLite's, not D1's, not FTS shadow tables).
fn ordinary_tables(conn: &Connection) -> Vec<String> {
    strings(
        conn,
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' \
         AND name <> 'd1_migrations' ORDER BY name",
    )
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

#[test]
fn every_table_exists_with_the_agreed_columns() {
    for set_of in SETS {
        let (conn, tables) = schema(set_of);
        for (table, columns) in tables {
            let actual = set(strings(
                &conn,
                &format!("SELECT name FROM pragma_table_info('{table}')"),
            ));
            assert!(!actual.is_empty(), "{set_of:?}: table {table} is missing");
            assert_eq!(
                actual,
                set(columns.split_whitespace()),
                "{set_of:?}: columns of {table}"
            );
        }
        // No table beyond the contract: a table that moved to the other set is gone from this one.
        assert_eq!(
            set(ordinary_tables(&conn)),
            set(tables.iter().map(|(table, _)| *table)),
            "{set_of:?}: the tables"
        );
    }
    let conn = db();
    let fts = strings(
        &conn,
        "SELECT sql FROM sqlite_schema WHERE name = 'leads_fts' AND type = 'table'",
    );
    assert!(
        fts.first().is_some_and(|sql| sql.contains("fts5")),
        "leads_fts is an FTS5 table: {fts:?}"
    );
}

#[test]
fn every_table_is_strict() {
    for set_of in SETS {
        let (conn, contract) = schema(set_of);
        let tables = ordinary_tables(&conn);
        assert!(tables.len() >= contract.len(), "{set_of:?}: {tables:?}");
        for table in tables {
            let strict = count(
                &conn,
                &format!(
                    "SELECT strict FROM pragma_table_list WHERE schema = 'main' AND name = '{table}'"
                ),
            );
            assert_eq!(strict, 1, "{set_of:?}: {table} is not STRICT");
        }
    }
}

#[test]
fn strict_tables_refuse_values_of_the_wrong_type() {
    let shard = seeded();
    let directory = directory();
    for (conn, table, row, column, bad) in [
        (&shard, "leads", LEAD, "heat_score", "'hot'"),
        (&directory, "orgs", DIRECTORY_ORG_A, "shard", "'first'"),
    ] {
        let result = insert(conn, table, row, &[("id", "'other'"), (column, bad)]);
        match &result {
            Err(rusqlite::Error::SqliteFailure(error, Some(message)))
                if error.code == ErrorCode::ConstraintViolation
                    && message.contains("cannot store") => {}
            _ => panic!("{table}.{column}: expected a datatype error, got {result:?}"),
        }
    }
}

/// A valid row of every tenant table beyond `seeded`'s, in foreign-key order.
const TENANT_ROWS: &[(&str, Row)] = &[
    ("scoring_configs", SCORING_CONFIG),
    ("pipeline_stages", STAGE),
    ("custom_field_defs", CUSTOM_FIELD),
    ("lead_tags", LEAD_TAG),
    ("social_profiles", SOCIAL_PROFILE),
    ("lead_merges", LEAD_MERGE),
    ("interactions", INTERACTION),
    ("heat_snapshots", SNAPSHOT),
    ("heat_level_changes", LEVEL_CHANGE),
    ("integrations", INTEGRATION),
    ("pending_connections", PENDING_CONNECTION),
    ("webhook_inbox", INBOX_EVENT),
    ("platform_throttles", THROTTLE),
    ("idempotency_keys", IDEMPOTENCY_KEY),
    ("rescore_runs", RESCORE_RUN),
    ("tracking_visitors", VISITOR),
    ("tracking_events", TRACKING_EVENT),
    ("erasure_suppressions", SUPPRESSION),
    ("erasure_inbox_scrubs", INBOX_SCRUB),
    ("members", MEMBER),
    ("scoring_backoff", SCORING_BACKOFF),
];

/// A shard with a row in every table (`seeded`, then [`TENANT_ROWS`]).
fn fully_seeded() -> Connection {
    let conn = seeded();
    for &(table, row) in TENANT_ROWS {
        insert_ok(&conn, table, row, &[]);
    }
    conn
}

#[test]
fn every_table_accepts_a_valid_row_and_foreign_keys_hold() {
    let conn = fully_seeded();
    let directory = directory_seeded();
    let directory_rows: &[(&str, Row)] = &[
        ("integration_accounts", INTEGRATION_ACCOUNT),
        ("webhook_unrouted", UNROUTED),
        ("rate_limits", RATE_LIMIT),
        ("job_leases", JOB_LEASE),
        ("job_runs", JOB_RUN),
        ("org_moves", ORG_MOVE),
    ];
    for &(table, row) in directory_rows {
        insert_ok(&directory, table, row, &[]);
    }
    for (conn, tables) in [(&conn, TENANT_TABLES), (&directory, DIRECTORY_TABLES)] {
        for (table, _) in tables {
            let rows = count(conn, &format!("SELECT count(*) FROM {table}"));
            assert!(rows >= 1, "{table} is empty");
        }
        // Also fails with "foreign key mismatch" if a parent key lacks a unique index.
        let mut check = conn.prepare("PRAGMA foreign_key_check").unwrap();
        let violations = check
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .count();
        assert_eq!(violations, 0);
    }
    // Directory defaults the application relies on: a new org is not ready and not moving.
    let (ready, moving_to): (i64, Option<i64>) = directory
        .query_row(
            "SELECT ready, moving_to FROM orgs WHERE id = 'org_a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ready, moving_to), (0, None));
    // Defaults the application relies on.
    let defaults: (f64, String, i64, i64, String, String, i64) = conn
        .query_row(
            "SELECT heat_score, heat_level, heat_stamp, needs_rescore, tags, custom_fields, version \
             FROM leads WHERE id = 'lead_1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .unwrap();
    assert_eq!(
        defaults,
        (0.0, "COLD".into(), 0, 0, "[]".into(), "{}".into(), 1)
    );
}

/// The values listed in `column IN (...)` of `table`'s column definition.
fn check_list(conn: &Connection, table: &str, column: &str) -> BTreeSet<String> {
    let sql = strings(
        conn,
        &format!("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"),
    )
    .pop()
    .unwrap_or_else(|| panic!("no table {table}"));
    let definition = sql
        .find(&format!("\n    {column} "))
        .unwrap_or_else(|| panic!("no column {column} in {table}"));
    let marker = format!("{column} IN (");
    let start = sql[definition..]
        .find(&marker)
        .map(|at| definition + at + marker.len())
        .unwrap_or_else(|| panic!("{table}.{column} has no IN (...) check"));
    let end = start + sql[start..].find(')').expect("the list is closed");
    sql[start..end]
        .split(',')
        .map(|value| value.trim().trim_matches('\'').to_string())
        .collect()
}

#[test]
fn enum_checks_list_exactly_the_domain_wire_strings() {
    let conn = db();
    let directory = directory();
    let social: Vec<&str> = Platform::ALL
        .iter()
        .filter(|platform| platform.is_social())
        .map(|platform| platform.as_str())
        .collect();
    let cases: &[(&str, &str, &[&str])] = &[
        ("leads", "source", Source::WIRE_NAMES),
        ("leads", "heat_level", HeatLevel::WIRE_NAMES),
        ("social_profiles", "platform", Platform::WIRE_NAMES),
        ("custom_field_defs", "field_type", FieldType::WIRE_NAMES),
        ("interactions", "type", InteractionType::WIRE_NAMES),
        ("interactions", "platform", Platform::WIRE_NAMES),
        ("interactions", "captured_by", CapturedBy::WIRE_NAMES),
        ("heat_snapshots", "level", HeatLevel::WIRE_NAMES),
        ("heat_level_changes", "old_level", HeatLevel::WIRE_NAMES),
        ("heat_level_changes", "new_level", HeatLevel::WIRE_NAMES),
        ("integrations", "platform", &social),
        ("integrations", "status", IntegrationStatus::WIRE_NAMES),
        ("webhook_inbox", "platform", &social),
        ("webhook_inbox", "status", InboxStatus::WIRE_NAMES),
        ("platform_throttles", "platform", &social),
        ("rescore_runs", "status", RescoreRunStatus::WIRE_NAMES),
        ("members", "role", Role::WIRE_NAMES),
    ];
    for (table, column, wire_names) in cases {
        assert_eq!(
            check_list(&conn, table, column),
            set(wire_names.iter().copied()),
            "{table}.{column}"
        );
    }
    let directory_cases: &[(&str, &str, &[&str])] = &[
        ("integration_accounts", "platform", &social),
        ("webhook_unrouted", "platform", &social),
    ];
    for (table, column, wire_names) in directory_cases {
        assert_eq!(
            check_list(&directory, table, column),
            set(wire_names.iter().copied()),
            "directory {table}.{column}"
        );
    }
}

/// SQLite looks up child rows by their foreign key columns when a parent row is deleted or its
/// key changes; without an index leading with those columns that is a full scan of the child.
#[test]
fn every_foreign_key_is_served_by_an_index() {
    for set_of in SETS {
        let (conn, _) = schema(set_of);
        foreign_keys_are_served_by_an_index(&conn);
    }
}

fn foreign_keys_are_served_by_an_index(conn: &Connection) {
    for table in ordinary_tables(conn) {
        let mut keys: Vec<(i64, Vec<String>)> = Vec::new();
        let mut statement = conn
            .prepare("SELECT id, \"from\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
            .unwrap();
        let rows = statement
            .query_map([&table], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .unwrap();
        for row in rows {
            let (id, column) = row.unwrap();
            match keys.last_mut() {
                Some((last, columns)) if *last == id => columns.push(column),
                _ => keys.push((id, vec![column])),
            }
        }
        let indexes: Vec<Vec<String>> = strings(
            conn,
            &format!("SELECT name FROM pragma_index_list('{table}')"),
        )
        .iter()
        .map(|index| {
            strings(
                conn,
                &format!(
                    "SELECT COALESCE(name, '<expression>') FROM pragma_index_info('{index}') \
                     ORDER BY seqno"
                ),
            )
        })
        .collect();
        for (_, columns) in keys {
            let wanted = set(columns.iter().cloned());
            let served = indexes.iter().any(|index| {
                index.len() >= columns.len()
                    && set(index[..columns.len()].iter().cloned()) == wanted
            });
            assert!(
                served,
                "{table}: no index leads with the foreign key {columns:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Uniqueness

#[test]
fn a_platform_user_is_one_social_profile_per_org() {
    let conn = seeded();
    insert_ok(&conn, "social_profiles", SOCIAL_PROFILE, &[]);
    assert_violates(
        insert(
            &conn,
            "social_profiles",
            SOCIAL_PROFILE,
            &[("id", "'sp_2'")],
        ),
        "UNIQUE",
    );
    // The same user id on another platform, or in another org, is someone else.
    insert_ok(
        &conn,
        "social_profiles",
        SOCIAL_PROFILE,
        &[("id", "'sp_3'"), ("platform", "'instagram'")],
    );
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[("id", "'lead_b'"), ("org_id", "'org_b'")],
    );
    insert_ok(
        &conn,
        "social_profiles",
        SOCIAL_PROFILE,
        &[
            ("id", "'sp_4'"),
            ("org_id", "'org_b'"),
            ("lead_id", "'lead_b'"),
        ],
    );
}

#[test]
fn an_external_id_is_one_interaction_per_org_and_platform() {
    let conn = seeded();
    insert_ok(&conn, "interactions", INTERACTION, &[]);
    assert_violates(
        insert(&conn, "interactions", INTERACTION, &[("id", "'ix_2'")]),
        "UNIQUE",
    );
    // What redelivery does: no error, no second row.
    let changed = conn
        .execute(
            "INSERT INTO interactions (id, org_id, lead_id, type, platform, occurred_at, captured_by, \
             points, external_id, created_at) VALUES ('ix_3', 'org_a', 'lead_1', 'social_like', \
             'facebook', '2026-11-25T10:00:00.000Z', 'webhook', 1, 'fb:like:1', \
             '2026-11-25T10:00:00.000Z') ON CONFLICT (org_id, platform, external_id) DO NOTHING",
            [],
        )
        .unwrap();
    assert_eq!(changed, 0);
    insert_ok(
        &conn,
        "interactions",
        INTERACTION,
        &[("id", "'ix_4'"), ("platform", "'instagram'")],
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM interactions"), 2);
}

#[test]
fn a_webhook_delivery_is_stored_once_per_dedupe_key() {
    let conn = db();
    insert_ok(&conn, "webhook_inbox", INBOX_EVENT, &[]);
    assert_violates(
        insert(&conn, "webhook_inbox", INBOX_EVENT, &[("id", "'evt_2'")]),
        "UNIQUE",
    );
    insert_ok(
        &conn,
        "webhook_inbox",
        INBOX_EVENT,
        &[("id", "'evt_3'"), ("platform", "'instagram'")],
    );
}

#[test]
fn an_idempotency_key_is_one_row_per_org_and_user() {
    let conn = db();
    insert_ok(&conn, "idempotency_keys", IDEMPOTENCY_KEY, &[]);
    assert_violates(
        insert(&conn, "idempotency_keys", IDEMPOTENCY_KEY, &[]),
        "UNIQUE",
    );
    // The same key of another user (or another org) is a key of its own.
    insert_ok(
        &conn,
        "idempotency_keys",
        IDEMPOTENCY_KEY,
        &[("user_id", "'user_2'")],
    );
    insert_ok(
        &conn,
        "idempotency_keys",
        IDEMPOTENCY_KEY,
        &[("org_id", "'org_b'")],
    );
    assert_check_rejects(&conn, "idempotency_keys", IDEMPOTENCY_KEY, "user_id", "''");
}

#[test]
fn a_suppression_is_one_hash_per_org() {
    let conn = db();
    insert_ok(&conn, "erasure_suppressions", SUPPRESSION, &[]);
    assert_violates(
        insert(&conn, "erasure_suppressions", SUPPRESSION, &[]),
        "UNIQUE",
    );
    insert_ok(
        &conn,
        "erasure_suppressions",
        SUPPRESSION,
        &[("org_id", "'org_b'")],
    );
    assert_check_rejects(
        &conn,
        "erasure_suppressions",
        SUPPRESSION,
        "identity_hash",
        "'ada@example.com'",
    );
    assert_check_rejects(
        &conn,
        "erasure_suppressions",
        SUPPRESSION,
        "erased_at",
        "'2026-11-25 10:00:00'",
    );
}

#[test]
fn a_custom_field_key_is_unique_per_org() {
    let conn = seeded();
    insert_ok(&conn, "custom_field_defs", CUSTOM_FIELD, &[]);
    assert_violates(
        insert(
            &conn,
            "custom_field_defs",
            CUSTOM_FIELD,
            &[("id", "'cf_2'")],
        ),
        "UNIQUE",
    );
    insert_ok(
        &conn,
        "custom_field_defs",
        CUSTOM_FIELD,
        &[("id", "'cf_3'"), ("org_id", "'org_b'")],
    );
}

#[test]
fn a_stage_name_is_unique_per_org_whatever_its_case() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[]);
    assert_violates(
        insert(
            &conn,
            "pipeline_stages",
            STAGE,
            &[("id", "'stg_2'"), ("name", "'NEW'")],
        ),
        "UNIQUE",
    );
    insert_ok(
        &conn,
        "pipeline_stages",
        STAGE,
        &[("id", "'stg_3'"), ("org_id", "'org_b'")],
    );
}

#[test]
fn an_account_belongs_to_one_org() {
    let conn = directory_seeded();
    insert_ok(&conn, "integration_accounts", INTEGRATION_ACCOUNT, &[]);
    assert_violates(
        insert(
            &conn,
            "integration_accounts",
            INTEGRATION_ACCOUNT,
            &[("org_id", "'org_b'")],
        ),
        "UNIQUE",
    );
    // Only an org the directory knows connects an account.
    assert_violates(
        insert(
            &conn,
            "integration_accounts",
            INTEGRATION_ACCOUNT,
            &[("account_id", "'page_2'"), ("org_id", "'org_missing'")],
        ),
        "FOREIGN KEY",
    );
}

#[test]
fn a_site_key_names_one_org() {
    let conn = directory_seeded();
    assert_violates(
        insert(
            &conn,
            "orgs",
            DIRECTORY_ORG_A,
            &[("id", "'org_c'"), ("site_key", "'site_b'")],
        ),
        "UNIQUE",
    );
    insert_ok(
        &conn,
        "orgs",
        DIRECTORY_ORG_A,
        &[("id", "'org_c'"), ("site_key", "'site_c'")],
    );
}

#[test]
fn an_unrouted_delivery_is_recorded_once_per_dedupe_key() {
    let conn = directory();
    insert_ok(&conn, "webhook_unrouted", UNROUTED, &[]);
    assert_violates(
        insert(
            &conn,
            "webhook_unrouted",
            UNROUTED,
            &[("account_id", "'page_8'")],
        ),
        "UNIQUE",
    );
    // What a redelivery does: no error, no second row.
    let changed = conn
        .execute(
            "INSERT INTO webhook_unrouted (platform, dedupe_key, account_id, received_at) \
             VALUES ('facebook', '0f1e2d', 'page_9', '2026-11-25T10:00:01.000Z') \
             ON CONFLICT (platform, dedupe_key) DO NOTHING",
            [],
        )
        .unwrap();
    assert_eq!(changed, 0);
    // The same key on another platform is another delivery; the account may be unknown.
    insert_ok(
        &conn,
        "webhook_unrouted",
        UNROUTED,
        &[("platform", "'linkedin'"), ("account_id", "NULL")],
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM webhook_unrouted"), 2);
}

// ---------------------------------------------------------------------------------------------
// CHECK constraints

#[test]
fn checks_reject_values_outside_each_enum() {
    let conn = seeded();
    let cases: &[(&str, Row, &str, &str)] = &[
        ("leads", LEAD, "source", "'tiktok'"),
        ("leads", LEAD, "heat_level", "'warm'"),
        ("leads", LEAD, "needs_rescore", "2"),
        ("social_profiles", SOCIAL_PROFILE, "platform", "'myspace'"),
        ("custom_field_defs", CUSTOM_FIELD, "field_type", "'colour'"),
        ("custom_field_defs", CUSTOM_FIELD, "required", "-1"),
        ("interactions", INTERACTION, "type", "'poke'"),
        ("interactions", INTERACTION, "platform", "'tiktok'"),
        ("interactions", INTERACTION, "captured_by", "'magic'"),
        ("heat_snapshots", SNAPSHOT, "level", "'TEPID'"),
        ("heat_level_changes", LEVEL_CHANGE, "new_level", "'COLD'"),
        ("integrations", INTEGRATION, "platform", "'website'"),
        ("integrations", INTEGRATION, "status", "'broken'"),
        ("integrations", INTEGRATION, "status", "'connected'"),
        ("webhook_inbox", INBOX_EVENT, "status", "'done'"),
        ("webhook_inbox", INBOX_EVENT, "platform", "'email'"),
        ("platform_throttles", THROTTLE, "platform", "'phone'"),
        ("rescore_runs", RESCORE_RUN, "status", "'failed'"),
        ("tracking_events", TRACKING_EVENT, "kind", "'click'"),
        ("tracking_events", TRACKING_EVENT, "attributed", "3"),
        ("pipeline_stages", STAGE, "is_won", "1"),
        ("scoring_configs", SCORING_CONFIG, "hot_threshold", "5"),
        (
            "scoring_configs",
            SCORING_CONFIG,
            "decay_half_life_days",
            "0",
        ),
    ];
    for &(table, base, column, bad) in cases {
        assert_check_rejects(&conn, table, base, column, bad);
    }
    let directory = directory_seeded();
    let directory_cases: &[(&str, Row, &str, &str)] = &[
        ("orgs", DIRECTORY_ORG_A, "shard", "-1"),
        ("orgs", DIRECTORY_ORG_A, "site_key", "''"),
        ("orgs", DIRECTORY_ORG_A, "ready", "2"),
        ("orgs", DIRECTORY_ORG_A, "moving_to", "-1"),
        // A move goes to another shard.
        ("orgs", DIRECTORY_ORG_A, "moving_to", "0"),
        (
            "integration_accounts",
            INTEGRATION_ACCOUNT,
            "kind",
            "'organization'",
        ),
        (
            "integration_accounts",
            INTEGRATION_ACCOUNT,
            "platform",
            "'website'",
        ),
        (
            "integration_accounts",
            INTEGRATION_ACCOUNT,
            "account_id",
            "''",
        ),
        ("webhook_unrouted", UNROUTED, "platform", "'email'"),
        ("webhook_unrouted", UNROUTED, "dedupe_key", "''"),
        ("rate_limits", RATE_LIMIT, "count", "-1"),
    ];
    for &(table, base, column, bad) in directory_cases {
        // A fresh id, so that only the CHECK can refuse the row.
        let result = if table == "orgs" {
            insert(
                &directory,
                table,
                base,
                &[("id", "'org_c'"), ("site_key", "'site_c'"), (column, bad)],
            )
        } else {
            insert(&directory, table, base, &[(column, bad)])
        };
        match &result {
            Err(rusqlite::Error::SqliteFailure(error, Some(message)))
                if error.code == ErrorCode::ConstraintViolation
                    && message.contains("CHECK constraint failed") => {}
            _ => panic!(
                "directory {table}.{column} = {bad}: expected a CHECK violation, got {result:?}"
            ),
        }
    }
    // A move to another shard is fine.
    insert_ok(
        &directory,
        "orgs",
        DIRECTORY_ORG_A,
        &[
            ("id", "'org_c'"),
            ("site_key", "'site_c'"),
            ("moving_to", "1"),
        ],
    );
}

#[test]
fn checks_reject_invalid_or_misshapen_json() {
    let conn = seeded();
    let cases: &[(&str, Row, &str, &str)] = &[
        ("leads", LEAD, "source_detail", "'{\"campaign\": '"),
        ("leads", LEAD, "source_detail", "'[]'"),
        ("leads", LEAD, "tags", "'{}'"),
        ("leads", LEAD, "tags", "'vip'"),
        ("leads", LEAD, "custom_fields", "'[1]'"),
        ("interactions", INTERACTION, "metadata", "'null'"),
        ("interactions", INTERACTION, "metadata", "'{'"),
        ("custom_field_defs", CUSTOM_FIELD, "options", "'{}'"),
        ("scoring_configs", SCORING_CONFIG, "weights", "'[]'"),
        ("integrations", INTEGRATION, "metrics", "'{\"a\":}'"),
        (
            "platform_throttles",
            THROTTLE,
            "last_usage",
            "'{\"call_count\":'",
        ),
    ];
    for &(table, base, column, bad) in cases {
        assert_check_rejects(&conn, table, base, column, bad);
    }
    // A nullable JSON column takes NULL.
    insert_ok(
        &conn,
        "platform_throttles",
        THROTTLE,
        &[("last_usage", "NULL")],
    );
    assert_check_rejects(&directory(), "job_runs", JOB_RUN, "summary", "'finished'");
}

#[test]
fn checks_reject_timestamps_not_in_the_storage_format() {
    let conn = seeded();
    for bad in [
        "'2026-11-25T10:00:00Z'",
        "'2026-11-25T10:00:00.000+00:00'",
        "'2026-11-25 10:00:00.000'",
        "'2026-11-25T10:00:00.000z'",
        "'2026-02-31T10:00:00.000Z'",
        "'2026-11-25'",
        "'yesterday'",
        "''",
    ] {
        assert_check_rejects(&conn, "interactions", INTERACTION, "occurred_at", bad);
        assert_check_rejects(&conn, "leads", LEAD, "last_interaction_at", bad);
        assert_check_rejects(&conn, "webhook_inbox", INBOX_EVENT, "next_attempt_at", bad);
        assert_check_rejects(&db(), "orgs", ORG_A, "created_at", bad);
        let directory = directory();
        assert_check_rejects(&directory, "orgs", DIRECTORY_ORG_A, "updated_at", bad);
        assert_check_rejects(&directory, "webhook_unrouted", UNROUTED, "received_at", bad);
        assert_check_rejects(&directory, "job_leases", JOB_LEASE, "lease_until", bad);
        assert_check_rejects(&directory, "job_runs", JOB_RUN, "finished_at", bad);
        assert_check_rejects(&directory, "rate_limits", RATE_LIMIT, "window_start", bad);
    }
    for bad in ["'2026-2-3'", "'2026-02-30'", "'2026-11-25T00:00:00.000Z'"] {
        assert_check_rejects(&conn, "heat_snapshots", SNAPSHOT, "day", bad);
    }
    // The storage format itself, and NULL where the column is optional.
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[
            ("id", "'lead_2'"),
            ("last_interaction_at", "'2026-12-31T23:59:59.999Z'"),
            ("scored_at", "NULL"),
        ],
    );
}

#[test]
fn a_lead_in_a_stage_has_a_position() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[]);
    assert_check_rejects(&conn, "leads", LEAD, "stage_id", "'stg_new'");
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[
            ("id", "'lead_2'"),
            ("stage_id", "'stg_new'"),
            ("rank_key", "'V'"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Foreign keys and cascades

#[test]
fn deleting_a_lead_deletes_its_rows_and_forgets_its_visitors() {
    let conn = seeded();
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[("id", "'lead_keep'"), ("email", "NULL")],
    );
    for (table, row) in [
        ("interactions", INTERACTION),
        ("social_profiles", SOCIAL_PROFILE),
        ("lead_tags", LEAD_TAG),
        ("heat_snapshots", SNAPSHOT),
        ("heat_level_changes", LEVEL_CHANGE),
        ("lead_merges", LEAD_MERGE),
        ("tracking_visitors", VISITOR),
    ] {
        insert_ok(&conn, table, row, &[]);
    }
    insert_ok(
        &conn,
        "interactions",
        INTERACTION,
        &[
            ("id", "'ix_keep'"),
            ("lead_id", "'lead_keep'"),
            ("external_id", "'keep'"),
        ],
    );

    assert_eq!(
        conn.execute("DELETE FROM leads WHERE id = 'lead_1'", [])
            .unwrap(),
        1
    );

    for table in [
        "social_profiles",
        "lead_tags",
        "heat_snapshots",
        "heat_level_changes",
        "lead_merges",
    ] {
        assert_eq!(
            count(&conn, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert_eq!(
        strings(&conn, "SELECT id FROM interactions"),
        vec!["ix_keep".to_string()]
    );
    // The anonymous visitor stays; who it was does not.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tracking_visitors WHERE lead_id IS NULL"
        ),
        1
    );
}

#[test]
fn child_rows_need_an_existing_lead() {
    let conn = seeded();
    for (table, row) in [
        ("interactions", INTERACTION),
        ("social_profiles", SOCIAL_PROFILE),
        ("lead_tags", LEAD_TAG),
        ("heat_snapshots", SNAPSHOT),
    ] {
        assert_violates(
            insert(&conn, table, row, &[("lead_id", "'lead_missing'")]),
            "FOREIGN KEY",
        );
    }
    assert_violates(
        insert(
            &conn,
            "leads",
            LEAD,
            &[("id", "'lead_2'"), ("org_id", "'org_missing'")],
        ),
        "FOREIGN KEY",
    );
}

#[test]
fn a_lead_can_only_sit_in_a_stage_of_its_own_org() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[("org_id", "'org_b'")]);
    assert_violates(
        insert(
            &conn,
            "leads",
            LEAD,
            &[
                ("id", "'lead_2'"),
                ("stage_id", "'stg_new'"),
                ("rank_key", "'V'"),
            ],
        ),
        "FOREIGN KEY",
    );
}

#[test]
fn a_stage_holding_leads_cannot_be_deleted_but_an_org_deletes_everything() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[]);
    conn.execute(
        "UPDATE leads SET stage_id = 'stg_new', rank_key = 'V' WHERE id = 'lead_1'",
        [],
    )
    .unwrap();
    for (table, row) in [
        ("interactions", INTERACTION),
        ("scoring_configs", SCORING_CONFIG),
        ("custom_field_defs", CUSTOM_FIELD),
        ("integrations", INTEGRATION),
        ("rescore_runs", RESCORE_RUN),
    ] {
        insert_ok(&conn, table, row, &[]);
    }
    assert_violates(
        conn.execute("DELETE FROM pipeline_stages WHERE id = 'stg_new'", []),
        "FOREIGN KEY",
    );

    conn.execute("DELETE FROM orgs WHERE id = 'org_a'", [])
        .unwrap();
    for table in [
        "leads",
        "pipeline_stages",
        "interactions",
        "scoring_configs",
        "custom_field_defs",
        "integrations",
        "rescore_runs",
    ] {
        assert_eq!(
            count(&conn, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert_eq!(count(&conn, "SELECT count(*) FROM orgs"), 1);
}

#[test]
fn deleting_an_org_from_the_directory_disconnects_its_accounts() {
    let conn = directory_seeded();
    insert_ok(&conn, "integration_accounts", INTEGRATION_ACCOUNT, &[]);
    insert_ok(
        &conn,
        "integration_accounts",
        INTEGRATION_ACCOUNT,
        &[("account_id", "'page_b'"), ("org_id", "'org_b'")],
    );
    conn.execute("DELETE FROM orgs WHERE id = 'org_a'", [])
        .unwrap();
    assert_eq!(
        strings(&conn, "SELECT account_id FROM integration_accounts"),
        ["page_b"]
    );
}

// ---------------------------------------------------------------------------------------------
// How the two sets divide the tables

#[test]
fn the_sets_share_no_table_but_orgs() {
    let tenant_tables = set(ordinary_tables(&db()));
    let directory_tables = set(ordinary_tables(&directory()));
    let shared: Vec<&String> = tenant_tables.intersection(&directory_tables).collect();
    assert_eq!(shared, ["orgs"], "tables in both sets");
    // Nor any other named object (index, trigger, virtual table): a name means one thing.
    let names = |conn: &Connection| {
        set(strings(
            conn,
            "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND name <> 'd1_migrations' AND name <> 'orgs'",
        ))
    };
    let shared_names: Vec<String> = names(&db())
        .intersection(&names(&directory()))
        .cloned()
        .collect();
    assert!(
        shared_names.is_empty(),
        "names in both sets: {shared_names:?}"
    );
}

#[test]
fn every_tenant_table_with_an_org_id_is_not_in_the_directory() {
    let tenant = db();
    let directory = set(ordinary_tables(&directory()));
    let with_org_id: Vec<String> = ordinary_tables(&tenant)
        .into_iter()
        .filter(|table| {
            count(
                &tenant,
                &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = 'org_id'"),
            ) == 1
        })
        .collect();
    // The check has something to check: the org's data is on the shard.
    for table in ["leads", "interactions", "integrations", "webhook_inbox"] {
        assert!(
            with_org_id.iter().any(|t| t == table),
            "{table}: {with_org_id:?}"
        );
    }
    for table in &with_org_id {
        assert!(
            !directory.contains(table),
            "{table} holds an org's rows (org_id) on the shard, and the directory has it too"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering

#[test]
fn positions_sort_in_the_ranking_modules_order() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[]);
    // Keys from the ranking module, plus hand-picked ones where case-insensitive or numeric
    // comparison would disagree with ASCII order.
    let middle = ranking::between(None, None).unwrap();
    let after = ranking::between(Some(&middle), None).unwrap();
    let before = ranking::between(None, Some(&middle)).unwrap();
    let between = ranking::between(Some(&middle), Some(&after)).unwrap();
    let mut keys = vec![middle, after, before, between];
    keys.extend(["a", "B", "Z", "b1", "10", "9"].map(String::from));
    for (n, key) in keys.iter().enumerate() {
        let id = format!("'lead_r{n:02}'");
        let key = format!("'{key}'");
        insert_ok(
            &conn,
            "leads",
            LEAD,
            &[
                ("id", id.as_str()),
                ("stage_id", "'stg_new'"),
                ("rank_key", key.as_str()),
            ],
        );
    }
    let stored = strings(
        &conn,
        "SELECT rank_key FROM leads WHERE org_id = 'org_a' AND stage_id = 'stg_new' ORDER BY rank_key, id",
    );
    keys.sort();
    assert_eq!(stored, keys);
}

#[test]
fn names_sort_regardless_of_case_missing_ones_first() {
    let conn = seeded();
    for (id, last) in [
        ("'lead_2'", "'baker'"),
        ("'lead_3'", "'Adams'"),
        ("'lead_4'", "'carter'"),
        ("'lead_5'", "NULL"),
    ] {
        insert_ok(&conn, "leads", LEAD, &[("id", id), ("last_name", last)]);
    }
    let names = strings(
        &conn,
        "SELECT COALESCE(last_name, '-') FROM leads l WHERE l.org_id = 'org_a' \
         ORDER BY COALESCE(l.last_name, '') COLLATE NOCASE, COALESCE(l.first_name, '') COLLATE NOCASE, l.id",
    );
    assert_eq!(names, ["-", "Adams", "baker", "carter", "Doe"]);
}

// ---------------------------------------------------------------------------------------------
// Full-text search

/// Ids of the leads whose names, email or company match `query`, sorted.
fn search(conn: &Connection, query: &str) -> Vec<String> {
    let mut statement = conn.prepare(SEARCH_SQL).unwrap();
    let rows = statement
        .query_map(rusqlite::params![query, "org_a"], |row| row.get(0))
        .unwrap();
    let mut ids: Vec<String> = rows.collect::<Result<_, _>>().unwrap();
    ids.sort();
    ids
}

/// The shape of the API's free-text query (`q`): see [`plan_lead_free_text_search`].
const SEARCH_SQL: &str =
    "SELECT l.id FROM leads_fts CROSS JOIN leads l ON l.rowid = leads_fts.rowid \
                          WHERE leads_fts MATCH ?1 AND l.org_id = ?2";

/// FTS5's own check that the index matches the content table.
#[track_caller]
fn assert_fts_consistent(conn: &Connection) {
    conn.execute(
        "INSERT INTO leads_fts (leads_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("leads_fts matches leads");
}

fn fts_segments(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT count(*), sum(length(block)) FROM leads_fts_data",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .unwrap()
}

#[test]
fn full_text_search_follows_inserts_updates_and_deletes() {
    let conn = seeded();
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[
            ("id", "'lead_2'"),
            ("first_name", "'Zoë'"),
            ("last_name", "'Durand'"),
            ("email", "NULL"),
            ("company", "'Müller GmbH'"),
        ],
    );
    // A social lead with nothing to index.
    insert_ok(
        &conn,
        "leads",
        LEAD,
        &[
            ("id", "'lead_3'"),
            ("first_name", "NULL"),
            ("last_name", "NULL"),
            ("email", "NULL"),
            ("company", "NULL"),
            ("source", "'instagram'"),
        ],
    );
    assert_fts_consistent(&conn);
    assert_eq!(search(&conn, "jane"), ["lead_1"]);
    assert_eq!(search(&conn, "example"), ["lead_1"]);
    assert_eq!(search(&conn, "acme"), ["lead_1"]);
    assert_eq!(search(&conn, "zoe"), ["lead_2"], "diacritics are folded");
    assert_eq!(search(&conn, "muller"), ["lead_2"]);
    assert_eq!(search(&conn, "du*"), ["lead_2"], "prefix search");
    assert_eq!(search(&conn, "last_name:doe"), ["lead_1"]);

    conn.execute(
        "UPDATE leads SET last_name = 'Smith', email = 'jane@smith.io' WHERE id = 'lead_1'",
        [],
    )
    .unwrap();
    assert_fts_consistent(&conn);
    assert!(search(&conn, "doe").is_empty(), "the old name is gone");
    assert_eq!(search(&conn, "smith"), ["lead_1"]);

    // Score writes (every interaction, every scoring run) do not rewrite the text index.
    let before = fts_segments(&conn);
    conn.execute(
        "UPDATE leads SET heat_score = 9, heat_level = 'WARM', heat_stamp = heat_stamp + 1 WHERE id = 'lead_1'",
        [],
    )
    .unwrap();
    assert_eq!(fts_segments(&conn), before);

    // An UPSERT (never INSERT OR REPLACE) keeps the index in step.
    conn.execute(
        "INSERT INTO leads (id, org_id, first_name, source, created_at, updated_at) \
         VALUES ('lead_2', 'org_a', 'Chloe', 'website', '2026-11-25T10:00:00.000Z', '2026-11-25T10:00:00.000Z') \
         ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name",
        [],
    )
    .unwrap();
    assert_fts_consistent(&conn);
    assert!(search(&conn, "zoe").is_empty());
    assert_eq!(search(&conn, "chloe"), ["lead_2"]);

    conn.execute(
        "DELETE FROM leads WHERE id IN ('lead_1', 'lead_2', 'lead_3')",
        [],
    )
    .unwrap();
    assert_fts_consistent(&conn);
    for query in ["jane", "smith", "acme", "chloe", "du*"] {
        assert!(search(&conn, query).is_empty(), "{query} still matches");
    }
}

// ---------------------------------------------------------------------------------------------
// Query plans: what the API runs must read an index range, not a table

fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    for index in 1..=statement.parameter_count() {
        statement
            .raw_bind_parameter(index, rusqlite::types::Null)
            .unwrap();
    }
    let mut rows = statement.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// The rows come out of the index in the requested order: a page costs its own size.
    FromIndex,
    /// A sort step is acceptable (bounded inputs, or aggregate queries).
    MaySort,
}

/// Asserts that `sql` reads no table in full, searches `index` (a SEARCH, not a full index SCAN),
/// seeks to its keyset cursor if it has one, and, for `Order::FromIndex`, needs no sort.
#[track_caller]
fn assert_plan(conn: &Connection, sql: &str, index: &str, order: Order) {
    let plan = query_plan(conn, sql);
    let shown = format!("{sql}\n  plan:\n    {}", plan.join("\n    "));
    // `SHOW_PLANS=1 cargo test -p leadheat-e2e --test schema -- --nocapture` prints every plan.
    if std::env::var_os("SHOW_PLANS").is_some() {
        eprintln!("{shown}\n");
    }
    for line in &plan {
        let full_scan = line.starts_with("SCAN ")
            && !line.contains(" USING INDEX ")
            && !line.contains(" USING COVERING INDEX ")
            && !line.contains(" VIRTUAL TABLE INDEX ");
        assert!(!full_scan, "full table scan in {shown}");
    }
    let searches_index = plan.iter().any(|line| {
        line.starts_with("SEARCH ")
            && (line.contains(&format!(" {index} (")) || line.ends_with(&format!(" {index}")))
    });
    assert!(searches_index, "expected a SEARCH using {index} in {shown}");
    // A keyset page must start at the cursor (an index seek), not at the org's first row.
    let keyset = sql.contains(") < (") || sql.contains(") > (");
    let seeks = plan.iter().any(|line| {
        line.starts_with("SEARCH ")
            && [")<(", ")>(", "<expr><", "<expr>>"]
                .iter()
                .any(|range| line.contains(range))
    });
    assert!(
        !keyset || seeks,
        "the keyset is not used to seek in {shown}"
    );
    if order == Order::FromIndex {
        assert!(
            !plan.iter().any(|line| line.contains("TEMP B-TREE")),
            "a sort step in {shown}"
        );
    }
}

const LEAD_COLUMNS: &str = "id, first_name, last_name, email, heat_score, heat_level";

#[test]
fn plan_lead_list_by_heat_score_with_keyset() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND (heat_score, id) < (?2, ?3) \
         ORDER BY heat_score DESC, id DESC LIMIT ?4"
    );
    assert_plan(&conn, &sql, "leads_org_heat", Order::FromIndex);
    // The score range filter: the first page seeks with both bounds; later pages with the
    // keyset and the lower bound. On a later page the upper bound is implied by the cursor and must
    // be left out: given both, SQLite seeks with max_score and reads every row from there down to
    // the cursor.
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND heat_score >= ?2 AND heat_score <= ?3 \
         ORDER BY heat_score DESC, id DESC LIMIT ?4"
    );
    assert_plan(&conn, &sql, "leads_org_heat", Order::FromIndex);
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND heat_score >= ?2 \
         AND (heat_score, id) < (?3, ?4) ORDER BY heat_score DESC, id DESC LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_heat", Order::FromIndex);
}

/// Sorted by the expression the lead list uses (see the index's comment in the migration). SQLite
/// seeks an expression index with a scalar bound on the expression, not with the row-value
/// keyset alone, hence the redundant `COALESCE(...) <= ?2`.
#[test]
fn plan_lead_list_by_last_interaction() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads l WHERE l.org_id = ?1 \
         AND COALESCE(l.last_interaction_at, '') <= ?2 \
         AND (COALESCE(l.last_interaction_at, ''), l.id) < (?2, ?3) \
         ORDER BY COALESCE(l.last_interaction_at, '') DESC, l.id DESC LIMIT ?4"
    );
    assert_plan(&conn, &sql, "leads_org_last_interaction", Order::FromIndex);
}

#[test]
fn plan_lead_list_by_name() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads l WHERE l.org_id = ?1 \
         AND COALESCE(l.last_name, '') COLLATE NOCASE >= ?2 \
         AND (COALESCE(l.last_name, '') COLLATE NOCASE, COALESCE(l.first_name, '') COLLATE NOCASE, l.id) \
         > (?2, ?3, ?4) \
         ORDER BY COALESCE(l.last_name, '') COLLATE NOCASE, COALESCE(l.first_name, '') COLLATE NOCASE, \
         l.id LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_name", Order::FromIndex);
}

#[test]
fn plan_lead_list_filtered_by_heat_level() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND heat_level = ?2 \
         AND (heat_score, id) < (?3, ?4) ORDER BY heat_score DESC, id DESC LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_level_heat", Order::FromIndex);
}

#[test]
fn plan_lead_list_filtered_by_source() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND source = ?2 \
         AND (created_at, id) < (?3, ?4) ORDER BY created_at DESC, id DESC LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_source_created", Order::FromIndex);
}

#[test]
fn plan_pipeline_stage_in_position_order() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS}, rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 \
         AND (rank_key, id) > (?3, ?4) ORDER BY rank_key, id LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_stage_rank", Order::FromIndex);
}

#[test]
fn plan_lead_list_filtered_by_owner() {
    let conn = db();
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 AND owner_id = ?2 \
         AND (created_at, id) < (?3, ?4) ORDER BY created_at DESC, id DESC LIMIT ?5"
    );
    assert_plan(&conn, &sql, "leads_org_owner_created", Order::FromIndex);
}

#[test]
fn plan_lead_list_filtered_by_tag() {
    let conn = db();
    // Driven from the tag's rows, newest lead first (ids sort by creation time).
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM lead_tags t JOIN leads l ON l.id = t.lead_id \
         WHERE t.org_id = ?1 AND t.tag = ?2 AND t.lead_id < ?3 ORDER BY t.lead_id DESC LIMIT ?4"
    );
    assert_plan(&conn, &sql, "lead_tags_org_tag", Order::FromIndex);
    // Combined with another sort: the tag narrows through its index; the page is sorted.
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads WHERE org_id = ?1 \
         AND id IN (SELECT lead_id FROM lead_tags WHERE org_id = ?1 AND tag = ?2) \
         AND (heat_score, id) < (?3, ?4) ORDER BY heat_score DESC, id DESC LIMIT ?5"
    );
    assert_plan(&conn, &sql, "lead_tags_org_tag", Order::MaySort);
}

#[test]
fn plan_lead_lookup_by_email_and_phone() {
    let conn = db();
    assert_plan(
        &conn,
        "SELECT id FROM leads WHERE org_id = ?1 AND email_normalized = ?2",
        "leads_org_email",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT id FROM leads WHERE org_id = ?1 AND phone_normalized = ?2",
        "leads_org_phone",
        Order::FromIndex,
    );
}

/// The full-text index drives and each match is fetched by rowid, then filtered by org. Written
/// as a CROSS JOIN, which pins the join order in SQLite: with a plain JOIN and no statistics the
/// planner walks every lead of the org and probes the full-text index once per lead.
#[test]
fn plan_lead_free_text_search() {
    let conn = db();
    let plan = query_plan(&conn, SEARCH_SQL);
    assert!(
        plan.len() == 2
            && plan[0].starts_with("SCAN leads_fts VIRTUAL TABLE INDEX")
            && plan[1].starts_with("SEARCH l USING INTEGER PRIMARY KEY (rowid=?)"),
        "{plan:#?}"
    );
}

#[test]
fn plan_lead_timeline_newest_first() {
    let conn = db();
    // As the store writes them: scoped by lead AND org (the org-first indexes must not win).
    let sql = "SELECT id, type, platform, occurred_at FROM interactions WHERE lead_id = ?1 AND org_id = ?2 \
               AND (occurred_at, id) < (?3, ?4) ORDER BY occurred_at DESC, id DESC LIMIT ?5";
    assert_plan(
        &conn,
        sql,
        "interactions_lead_org_occurred",
        Order::FromIndex,
    );
    // Filtered by type and a time range.
    let sql = "SELECT id FROM interactions WHERE lead_id = ?1 AND org_id = ?2 AND type = ?3 \
               AND occurred_at >= ?4 AND occurred_at < ?5 ORDER BY occurred_at DESC, id DESC LIMIT ?6";
    assert_plan(
        &conn,
        sql,
        "interactions_lead_org_occurred",
        Order::FromIndex,
    );
}

#[test]
fn plan_per_lead_reads_use_the_lead_index() {
    let conn = db();
    // Scoring a lead reads all its touches: one lead's rows, never the org's.
    let sql = "SELECT type, occurred_at FROM interactions WHERE lead_id = ?1 AND org_id = ?2";
    assert_plan(&conn, sql, "interactions_lead_org_occurred", Order::MaySort);
    let sql = "SELECT lead_id, type, occurred_at FROM interactions \
               WHERE lead_id IN (SELECT value FROM json_each(?1))";
    assert_plan(&conn, sql, "interactions_lead_org_occurred", Order::MaySort);
    let sql = "SELECT lead_id, platform FROM social_profiles \
               WHERE org_id = ?1 AND lead_id IN (SELECT value FROM json_each(?2))";
    assert_plan(&conn, sql, "social_profiles_lead_org", Order::MaySort);
}

#[test]
fn plan_org_feed_filtered_by_platform_or_type() {
    let conn = db();
    let sql = "SELECT id, lead_id, type FROM interactions WHERE org_id = ?1 AND platform = ?2 \
               AND (occurred_at, id) < (?3, ?4) ORDER BY occurred_at DESC, id DESC LIMIT ?5";
    assert_plan(
        &conn,
        sql,
        "interactions_org_platform_occurred",
        Order::FromIndex,
    );
    let sql = "SELECT id, lead_id, platform FROM interactions WHERE org_id = ?1 AND type = ?2 \
               AND (occurred_at, id) < (?3, ?4) ORDER BY occurred_at DESC, id DESC LIMIT ?5";
    assert_plan(
        &conn,
        sql,
        "interactions_org_type_occurred",
        Order::FromIndex,
    );
    let sql = "SELECT id, lead_id, platform FROM interactions WHERE org_id = ?1 \
               AND (occurred_at, id) < (?2, ?3) ORDER BY occurred_at DESC, id DESC LIMIT ?4";
    assert_plan(&conn, sql, "interactions_org_occurred", Order::FromIndex);
    let sql = "SELECT id, lead_id, platform FROM interactions WHERE org_id = ?1 \
               AND platform IN ('facebook', 'instagram', 'linkedin') \
               AND (occurred_at, id) < (?2, ?3) ORDER BY occurred_at DESC, id DESC LIMIT ?4";
    assert_plan(&conn, sql, "interactions_org_occurred", Order::FromIndex);
}

#[test]
fn plan_changes_poll_is_one_lookup_per_table() {
    let conn = db();
    // GET /v1/changes: the newest interaction, lead change and heat level change of one org.
    let sql = "SELECT MAX(created_at) FROM interactions WHERE org_id = ?1";
    assert_plan(&conn, sql, "interactions_org_created", Order::FromIndex);
    let sql = "SELECT MAX(updated_at) FROM leads WHERE org_id = ?1";
    assert_plan(&conn, sql, "leads_org_updated", Order::FromIndex);
    let sql = "SELECT MAX(changed_at) FROM heat_level_changes WHERE org_id = ?1";
    assert_plan(
        &conn,
        sql,
        "heat_level_changes_org_changed",
        Order::FromIndex,
    );
}

#[test]
fn plan_inbox_due_events() {
    let conn = db();
    let sql = "SELECT id FROM webhook_inbox WHERE status = 'pending' \
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) ORDER BY next_attempt_at LIMIT ?2";
    assert_plan(&conn, sql, "webhook_inbox_status_next", Order::FromIndex);
    let sql = "SELECT status, count(*) FROM webhook_inbox WHERE org_id = ?1 AND platform = ?2 \
               GROUP BY status";
    assert_plan(
        &conn,
        sql,
        "webhook_inbox_org_platform_status",
        Order::FromIndex,
    );
}

#[test]
fn plan_scoring_job_work_queues() {
    let conn = db();
    assert_plan(
        &conn,
        "SELECT id FROM leads WHERE needs_rescore = 1 AND org_id = ?1 ORDER BY id LIMIT ?2",
        "leads_needs_rescore",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT id FROM leads WHERE org_id = ?1 AND scored_config_version < ?2 LIMIT ?3",
        "leads_org_scored_version",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT id FROM leads WHERE org_id = ?1 AND scored_config_version = ?2 AND id > ?3 \
         ORDER BY id LIMIT ?4",
        "leads_org_scored_version",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT day, score FROM heat_snapshots WHERE lead_id = ?1 AND day >= ?2 ORDER BY day",
        "PRIMARY KEY",
        Order::FromIndex,
    );
}

/// The dashboard reads rollups by primary key range (`store::dashboard`): the org's lead counts,
/// and the window's days of touchpoints and lead days.
#[test]
fn plan_dashboard_reads_rollups_by_key() {
    let conn = db();
    for (sql, index) in [
        (
            "SELECT heat_level, SUM(n) FROM dashboard_lead_counts WHERE org_id = ?1 GROUP BY heat_level",
            "PRIMARY KEY",
        ),
        (
            "SELECT day, platform, SUM(n) FROM dashboard_touch_days \
             WHERE org_id = ?1 AND day >= ?2 AND day <= ?3 GROUP BY day, platform",
            "PRIMARY KEY",
        ),
        (
            "SELECT SUM(hot_net) FROM dashboard_lead_days WHERE org_id = ?1 AND day < ?2",
            "PRIMARY KEY",
        ),
    ] {
        assert_plan(&conn, sql, index, Order::MaySort);
    }
}

/// Trending reads the org's leads from an index and each one's baseline snapshot by primary key:
/// no touchpoint, no scan of the snapshots.
#[test]
fn plan_dashboard_trending_from_snapshots() {
    let conn = db();
    let sql = "SELECT l.id, l.heat_score - COALESCE((SELECT s.score FROM heat_snapshots s \
               WHERE s.lead_id = l.id AND s.day >= ?2 AND s.day <= ?3 ORDER BY s.day DESC LIMIT 1), 0) \
               FROM leads l WHERE l.org_id = ?1";
    assert_plan(&conn, sql, "leads_org_heat", Order::MaySort);
    let plan = query_plan(&conn, sql).join("\n");
    assert!(
        plan.contains("SEARCH s USING PRIMARY KEY (lead_id=? AND day>? AND day<?)"),
        "{plan}"
    );
    assert!(!plan.contains("interactions"), "{plan}");
}

// ---------------------------------------------------------------------------------------------
// The migration files themselves

#[test]
fn migrations_are_plain_sql_that_d1_accepts() {
    for file in all_migration_files() {
        let sql = fs::read_to_string(&file).unwrap();
        for statement in split_like_wrangler(&sql) {
            let upper = statement.to_ascii_uppercase();
            assert!(
                !upper.starts_with("PRAGMA"),
                "{file:?}: D1 migrations take no PRAGMA"
            );
            assert!(
                !upper.starts_with("BEGIN") && !upper.starts_with("COMMIT"),
                "{file:?}: D1 wraps each migration in its own transaction"
            );
        }
    }
}

/// wrangler applies the `.sql` files of one folder (a binding's `migrations_dir`); a file left
/// directly in `migrations/`, or in a folder of its own, would be applied to no database.
#[test]
fn every_migration_is_in_one_of_the_two_sets() {
    let stray = sql_files_in(&migrations_root());
    assert!(stray.is_empty(), "migrations outside both sets: {stray:?}");
    let mut folders: Vec<String> = fs::read_dir(migrations_root())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["directory", "tenant"]);
    // wrangler.toml points each binding at its set: DB at the directory, SHARD_k at the tenant set.
    let config = fs::read_to_string(migrations_root().join("../wrangler.toml")).unwrap();
    let blocks = config.split("[[env.").skip(1).filter(|block| {
        ["api", "webhooks", "scoring", "sync"]
            .iter()
            .any(|function| block.starts_with(&format!("{function}.d1_databases]]")))
    });
    let mut seen = 0;
    for block in blocks {
        let field = |name: &str| -> String {
            block
                .lines()
                .find_map(|line| {
                    let (key, value) = line.split_once('=')?;
                    (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
                })
                .unwrap_or_else(|| panic!("no {name} in [[env.{block}"))
        };
        let expected = if field("binding") == "DB" {
            "migrations/directory"
        } else {
            assert!(
                field("binding").starts_with("SHARD_"),
                "unexpected D1 binding in [[env.{block}"
            );
            "migrations/tenant"
        };
        assert_eq!(field("migrations_dir"), expected, "[[env.{block}");
        seen += 1;
    }
    assert!(
        seen >= 8,
        "every worker binds the directory and at least one shard: {seen} bindings"
    );
}

#[test]
fn the_statement_splitter_matches_wranglers_rules() {
    let sql = "CREATE TABLE a (x TEXT CHECK (x <> ';')); -- a comment; with a semicolon\n\
               CREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n    SELECT 1;\n    SELECT 2;\nEND;\n\
               /* block; comment */ SELECT 'it''s';";
    let statements = split_like_wrangler(sql);
    assert_eq!(statements.len(), 3, "{statements:#?}");
    assert!(statements[1].starts_with("CREATE TRIGGER") && statements[1].ends_with("END"));
    assert_eq!(statements[2], "SELECT 'it''s'");
    // wrangler closes a compound statement only on an upper-case END: a lower-case one (here
    // closing a CASE) glues the rest of the file into one statement, which D1 then refuses.
    let sql = "SELECT CASE WHEN 1 THEN 2 end; SELECT 3;";
    assert_eq!(split_like_wrangler(sql).len(), 1);
}

#[test]
fn plan_retention_sweeps_and_erasure_lookups() {
    let conn = db();
    assert_plan(
        &conn,
        "SELECT id FROM tracking_events WHERE occurred_at < ?1 LIMIT ?2",
        "tracking_events_occurred",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT rowid FROM tracking_visitors WHERE last_seen_at < ?1 LIMIT ?2",
        "tracking_visitors_last_seen",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2",
        "idempotency_keys_created",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
         WHERE org_id = ?1 AND user_id = ?4 AND idem_key = ?2 AND created_at >= ?3",
        "sqlite_autoindex_idempotency_keys_1",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT MAX(erased_at) AS erased_at FROM erasure_suppressions \
         WHERE org_id = ?1 AND identity_hash IN (SELECT value FROM json_each(?2))",
        "PRIMARY KEY",
        Order::MaySort,
    );
}

/// The directory's lookups: one per request (the org's shard, a site key's org, a delivery's
/// accounts), so each must be an index seek however many orgs there are.
#[test]
fn plan_directory_lookups() {
    let conn = directory();
    let org_columns = "id, shard, site_key, ready, moving_to, created_at";
    assert_plan(
        &conn,
        &format!("SELECT {org_columns} FROM orgs WHERE id = ?1"),
        "sqlite_autoindex_orgs_1",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        &format!("SELECT {org_columns} FROM orgs WHERE site_key = ?1"),
        "sqlite_autoindex_orgs_2",
        Order::FromIndex,
    );
    // A shard's orgs, page by page in id order (the jobs' walk, a shard move).
    assert_plan(
        &conn,
        &format!(
            "SELECT {org_columns} FROM orgs WHERE shard = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        "orgs_shard",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT account_id, org_id FROM integration_accounts WHERE platform = ?1 AND account_id IN (?2, ?3)",
        "sqlite_autoindex_integration_accounts_1",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT platform, account_id, kind FROM integration_accounts WHERE org_id = ?1 \
         ORDER BY platform, account_id",
        "integration_accounts_org",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT holder FROM job_leases WHERE name = ?1",
        "sqlite_autoindex_job_leases_1",
        Order::FromIndex,
    );
    assert_plan(
        &conn,
        "SELECT summary FROM job_runs WHERE job = ?1 ORDER BY started_at DESC LIMIT 10",
        "job_runs_job_started",
        Order::FromIndex,
    );
}

#[test]
fn plan_directory_retention_sweeps() {
    let conn = directory();
    assert_plan(
        &conn,
        "SELECT platform, dedupe_key FROM webhook_unrouted WHERE received_at < ?1 LIMIT ?2",
        "webhook_unrouted_received",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT bucket FROM rate_limits WHERE window_start < ?1",
        "rate_limits_window",
        Order::MaySort,
    );
    assert_plan(
        &conn,
        "SELECT id FROM job_runs WHERE job = ?1 AND started_at < ?2 LIMIT ?3",
        "job_runs_job_started",
        Order::MaySort,
    );
}

// ---------------------------------------------------------------------------------------------
// Shard moves: the table list of `leadheat_domain::sharding` against the tenant schema

/// Every tenant table is listed for moves with exactly its columns, parents before children, a
/// scope column that exists and a page key that is unique within the org; the statements a move
/// runs prepare on the schema. A table added to migrations/tenant without being listed fails here.
#[test]
fn every_tenant_table_is_moved_with_its_columns_in_foreign_key_order() {
    use leadheat_domain::sharding::{count_sql, Scope, DERIVED_TABLES, MOVE_TABLES};
    let conn = db();
    let listed: Vec<&str> = MOVE_TABLES.iter().map(|t| t.name).collect();
    // Derived tables (rollups the triggers fill) are not copied: they are the rest.
    assert!(DERIVED_TABLES.iter().all(|t| !listed.contains(t)));
    assert_eq!(
        set(ordinary_tables(&conn)),
        set(listed.iter().chain(DERIVED_TABLES).copied()),
        "the tables of leadheat_domain::sharding::MOVE_TABLES and DERIVED_TABLES and of \
         migrations/tenant"
    );
    for (position, table) in MOVE_TABLES.iter().enumerate() {
        let columns = set(strings(
            &conn,
            &format!("SELECT name FROM pragma_table_info('{}')", table.name),
        ));
        assert_eq!(
            set(table.columns.iter().copied()),
            columns,
            "columns of {}",
            table.name
        );
        // Parents first: every table a foreign key points at is copied before.
        for parent in strings(
            &conn,
            &format!(
                "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list('{}')",
                table.name
            ),
        ) {
            let at = listed.iter().position(|t| *t == parent);
            assert!(
                at.is_some_and(|at| at < position),
                "{} references {parent}, which must come before it",
                table.name
            );
        }
        let scope = match table.scope {
            Scope::Org(column) | Scope::Lead(column) => column,
        };
        assert!(
            columns.contains(scope),
            "{}: scope column {scope}",
            table.name
        );
        // The page key, with the scope column, is unique: some unique index (or the primary key)
        // has only columns among them.
        let mut key: BTreeSet<String> = set(table.key.iter().copied());
        key.insert(scope.to_string());
        let unique = strings(
            &conn,
            &format!(
                "SELECT name FROM pragma_index_list('{}') WHERE \"unique\" = 1",
                table.name
            ),
        )
        .into_iter()
        .any(|index| {
            let cols = set(strings(
                &conn,
                &format!("SELECT name FROM pragma_index_info('{index}')"),
            ));
            !cols.is_empty() && cols.is_subset(&key)
        });
        let rowid_pk = strings(
            &conn,
            &format!(
                "SELECT name FROM pragma_table_info('{}') WHERE pk = 1",
                table.name
            ),
        );
        assert!(
            unique || (rowid_pk.len() == 1 && key.contains(&rowid_pk[0])),
            "{}: the page key {:?} is not unique",
            table.name,
            table.key
        );
        for sql in [
            table.page_sql(false).0,
            table.page_sql(true).0,
            table.insert_sql(),
            table.delete_sql(),
        ] {
            conn.prepare(&sql)
                .unwrap_or_else(|e| panic!("{}: {sql}: {e}", table.name));
        }
    }
    conn.prepare(&count_sql())
        .expect("the count statement prepares");
}

/// The phases of `org_moves` are the domain's.
#[test]
fn move_phases_are_the_domain_phases() {
    use leadheat_domain::sharding::MovePhase;
    let conn = directory();
    assert_eq!(
        check_list(&conn, "org_moves", "phase"),
        set(MovePhase::ALL.iter().map(|p| p.as_str()))
    );
}

/// A move copies rows through JSON exactly: every table's page is read, turned into the JSON
/// array the worker sends, inserted into another shard with the move's statement, and compared.
#[test]
fn a_page_copied_through_json_is_the_same_rows() {
    use leadheat_domain::sharding::MOVE_TABLES;
    let source = fully_seeded();
    let target = db();
    for table in MOVE_TABLES {
        let (sql, limit_at) = table.page_sql(false);
        let mut statement = source.prepare(&sql).unwrap();
        assert_eq!(limit_at, 2);
        let names: Vec<String> = statement
            .column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let rows: Vec<serde_json::Value> = statement
            .query_map(rusqlite::params!["org_a", 1000], |row| {
                let mut object = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                        rusqlite::types::ValueRef::Integer(n) => n.into(),
                        rusqlite::types::ValueRef::Real(f) => f.into(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned().into()
                        }
                        rusqlite::types::ValueRef::Blob(_) => panic!("no blobs"),
                    };
                    object.insert(name.clone(), value);
                }
                Ok(serde_json::Value::Object(object))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let array = serde_json::Value::Array(rows.clone()).to_string();
        target.execute(&table.insert_sql(), [&array]).unwrap();
        // Again: the rows are there already and are skipped.
        target.execute(&table.insert_sql(), [&array]).unwrap();
        let copied = count(
            &target,
            &format!(
                "SELECT COUNT(*) FROM \"{}\" WHERE {}",
                table.name,
                table.scope_sql().replace("?1", "'org_a'")
            ),
        );
        assert_eq!(copied as usize, rows.len(), "{}", table.name);
        let columns = table.columns.join(", ");
        let dump = |conn: &Connection| {
            strings(
                conn,
                &format!(
                    "SELECT json_array({columns}) FROM \"{}\" WHERE {} ORDER BY 1",
                    table.name,
                    table.scope_sql().replace("?1", "'org_a'")
                ),
            )
        };
        assert_eq!(dump(&source), dump(&target), "{}", table.name);
    }
    // The copy's triggers built the derived tables: the same rows as at the source.
    for table in leadheat_domain::sharding::DERIVED_TABLES {
        let columns = strings(
            &source,
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        )
        .join(", ");
        let rows = |conn: &Connection| {
            strings(
                conn,
                &format!(
                    "SELECT json_array({columns}) FROM \"{table}\" WHERE org_id = 'org_a' ORDER BY 1"
                ),
            )
        };
        assert!(!rows(&source).is_empty(), "{table} of the source");
        assert_eq!(rows(&source), rows(&target), "{table}");
    }
    for table in MOVE_TABLES.iter().rev() {
        target
            .execute(&table.delete_sql(), rusqlite::params!["org_a", 1000])
            .unwrap();
    }
    for table in MOVE_TABLES
        .iter()
        .map(|t| t.name)
        .chain(leadheat_domain::sharding::DERIVED_TABLES.iter().copied())
    {
        assert_eq!(
            count(&target, &format!("SELECT COUNT(*) FROM \"{table}\"")),
            0,
            "{table} after the deletes",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboard rollups: the triggers against a recomputation from the base tables

/// The org's non-zero rollup rows, and the same rows recomputed from the base tables.
fn rollups_and_recomputed(conn: &Connection, org: &str) -> (Vec<String>, Vec<String>) {
    let stored = strings(
        conn,
        &format!(
            "SELECT 'c ' || heat_level || ' ' || source || ' ' || stage_id || ' ' || n \
             FROM dashboard_lead_counts WHERE org_id = '{org}' AND n <> 0 \
             UNION ALL SELECT 'd ' || day || ' ' || created || ' ' || hot_net \
             FROM dashboard_lead_days WHERE org_id = '{org}' AND (created <> 0 OR hot_net <> 0) \
             UNION ALL SELECT 't ' || day || ' ' || platform || ' ' || type || ' ' || n \
             FROM dashboard_touch_days WHERE org_id = '{org}' AND n <> 0 ORDER BY 1"
        ),
    );
    let recomputed = strings(
        conn,
        &format!(
            "SELECT 'c ' || heat_level || ' ' || source || ' ' || COALESCE(stage_id, '') || ' ' || COUNT(*) \
             FROM leads WHERE org_id = '{org}' GROUP BY heat_level, source, COALESCE(stage_id, '') \
             UNION ALL SELECT 'd ' || day || ' ' || SUM(created) || ' ' || SUM(hot_net) FROM ( \
               SELECT substr(created_at, 1, 10) AS day, 1 AS created, 0 AS hot_net FROM leads WHERE org_id = '{org}' \
               UNION ALL SELECT substr(changed_at, 1, 10), 0, (new_level = 'HOT') - (old_level = 'HOT') \
               FROM heat_level_changes WHERE org_id = '{org}') \
             GROUP BY day HAVING SUM(created) <> 0 OR SUM(hot_net) <> 0 \
             UNION ALL SELECT 't ' || substr(occurred_at, 1, 10) || ' ' || platform || ' ' || type || ' ' || COUNT(*) \
             FROM interactions WHERE org_id = '{org}' GROUP BY substr(occurred_at, 1, 10), platform, type ORDER BY 1"
        ),
    );
    (stored, recomputed)
}

/// Random inserts, updates (level, source, stage, day, platform, re-parenting) and deletes of
/// leads, touchpoints and level changes, the way every write path makes them: after each step
/// the rollups equal a recomputation. Deleting the org empties them.
#[test]
fn dashboard_rollups_follow_every_write() {
    let conn = seeded();
    insert_ok(&conn, "pipeline_stages", STAGE, &[]);
    insert_ok(
        &conn,
        "pipeline_stages",
        STAGE,
        &[("id", "'stg_won'"), ("name", "'Won'"), ("rank_key", "'X'")],
    );
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let levels = ["COLD", "WARM", "HOT"];
    let sources = ["website", "facebook", "referral"];
    let stages = ["NULL", "'stg_new'", "'stg_won'"];
    let days = ["2026-11-20", "2026-11-25", "2026-12-01"];
    let platforms = ["facebook", "linkedin", "email"];
    for step in 0..400 {
        let lead = format!("'lead_r{}'", next(12));
        let other = format!("'lead_r{}'", next(12));
        let day = days[next(3) as usize];
        let at = format!("'{day}T1{}:00:00.000Z'", next(10));
        let sql = match next(9) {
            0 | 1 => {
                let stage = stages[next(3) as usize];
                format!(
                    "INSERT INTO leads (id, org_id, source, heat_level, stage_id, rank_key, created_at, updated_at) \
                     VALUES ({lead}, 'org_a', '{}', '{}', {stage}, IIF({stage} IS NULL, NULL, 'V'), {at}, {at}) \
                     ON CONFLICT (id) DO UPDATE SET source = excluded.source, stage_id = excluded.stage_id, \
                     rank_key = excluded.rank_key",
                    sources[next(3) as usize],
                    levels[next(3) as usize]
                )
            }
            2 => format!(
                "UPDATE leads SET heat_level = '{}', heat_score = heat_score + 1 WHERE id = {lead}",
                levels[next(3) as usize]
            ),
            3 => {
                let stage = stages[next(3) as usize];
                format!(
                    "UPDATE leads SET stage_id = {stage}, rank_key = IIF({stage} IS NULL, NULL, 'W') WHERE id = {lead}"
                )
            }
            4 => format!(
                "INSERT INTO interactions (id, org_id, lead_id, type, platform, occurred_at, captured_by, points, external_id, created_at) \
                 SELECT 'ix_{step}', org_id, id, 'social_like', '{}', {at}, 'manual', 1, 'x{step}', {at} FROM leads WHERE id = {lead}",
                platforms[next(3) as usize]
            ),
            5 => format!(
                "UPDATE interactions SET lead_id = {other} WHERE lead_id = {lead} AND EXISTS (SELECT 1 FROM leads WHERE id = {other})"
            ),
            6 => format!(
                "UPDATE interactions SET occurred_at = {at}, platform = '{}' WHERE id IN (SELECT id FROM interactions LIMIT 1 OFFSET {})",
                platforms[next(3) as usize],
                next(5)
            ),
            7 => {
                let (old, new) = (levels[next(3) as usize], levels[next(3) as usize]);
                format!(
                    "INSERT INTO heat_level_changes (id, org_id, lead_id, old_level, new_level, changed_at) \
                     SELECT 'hlc_{step}', org_id, id, '{old}', '{new}', {at} FROM leads WHERE id = {lead} AND '{old}' <> '{new}'"
                )
            }
            _ => format!("DELETE FROM leads WHERE id = {lead}"),
        };
        conn.execute(&sql, [])
            .unwrap_or_else(|e| panic!("step {step}: {sql}: {e}"));
        let (stored, recomputed) = rollups_and_recomputed(&conn, "org_a");
        assert_eq!(stored, recomputed, "after step {step}: {sql}");
    }
    assert!(
        count(&conn, "SELECT COUNT(*) FROM dashboard_touch_days") > 0,
        "the steps wrote touchpoints"
    );
    conn.execute(
        "UPDATE leads SET stage_id = NULL, rank_key = NULL WHERE org_id = 'org_a'",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM orgs WHERE id = 'org_a'", [])
        .unwrap();
    for table in leadheat_domain::sharding::DERIVED_TABLES {
        assert_eq!(
            count(&conn, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
}
