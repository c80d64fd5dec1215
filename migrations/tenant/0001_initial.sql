-- Leadheat: the schema of every tenant shard (the SHARD_0 ... SHARD_{N-1} D1 databases of
-- wrangler.toml; applied to each by `wrangler d1 migrations apply`, with migrations_dir
-- "migrations/tenant"). A shard holds everything of the orgs the directory placed on it, and every
-- row here belongs to one org (platform_throttles also keeps Meta's app-wide usage, see there).
-- What belongs to no single org (which shard an org lives on, its
-- site key, which org a platform account belongs to, webhook deliveries for accounts no org
-- connected, rate limit counters and the scheduled jobs' leases and runs) lives in the directory
-- database (binding DB), whose schema is migrations/directory/. The two sets share one table
-- name, `orgs`: the directory's row says where an org lives, a shard's row is the parent of the
-- org's rows there.
--
-- Conventions, shared by every table (and by the directory's):
--   * Every table is STRICT: D1 otherwise stores whatever type it is handed (a Worker binding a JS
--     number for an id would silently store a REAL), and STRICT turns that into an error.
--   * Ids are TEXT made by the app (`<prefix>_<ULID>`): opaque, unique, and sortable by creation
--     time, so `ORDER BY id` is a stable tiebreaker and keyset cursors can end in the id.
--   * Timestamps are TEXT, RFC 3339 UTC with milliseconds and a `Z`: `2026-11-25T10:00:00.000Z`.
--     The app compares and sorts them as plain strings (ranges, keyset cursors, leases), which is
--     only correct when every value has exactly this shape: `...10:00:00Z` sorts AFTER
--     `...10:00:00.500Z` and `+00:00` offsets sort before both. So every timestamp column CHECKs
--     that formatting its value in that shape gives the value back:
--     `strftime('%Y-%m-%dT%H:%M:%fZ', col) IS col` (also refusing impossible dates such as
--     February 31, which strftime normalises). `day` columns hold `YYYY-MM-DD`, checked with
--     date(). `IS`, not `=`: strftime of garbage is NULL, and a NULL CHECK result would pass; a
--     NULL column still passes (NULL IS NULL), as nullable columns should. (A GLOB pattern would
--     be shorter to read, but D1 refuses GLOB patterns of this length: "pattern too complex".)
--   * JSON columns are TEXT with `json_valid`, and `json_type` where the shape is fixed (object or
--     array), so a reader can call json_each / json_extract on any row without guarding. A
--     nullable JSON column spells out `IS NULL OR`: json_valid(NULL) is 0 on some SQLite versions.
--   * Booleans are INTEGER 0/1.
--   * Enumerations are CHECK lists spelled `col IN (...)` with exactly the wire strings of the
--     domain crate's enums (shared/src/types.rs); tests/tests/schema.rs compares the two. Adding a
--     value later means rebuilding the table (SQLite cannot alter a CHECK).
--   * `org_id` is on every tenant row, first in every index the API uses, so one org's queries
--     never read another org's rows. Child rows of a lead (interactions, tags, ...) repeat the
--     lead's org_id, copied from the lead by the app, rather than joining to leads on every read.
--   * Every foreign key's child columns lead some index: SQLite otherwise scans the whole child
--     table for each parent row deleted (a lead delete would scan every interaction).
--
-- For wrangler's statement splitter: trigger bodies use upper-case BEGIN/END on their own lines,
-- and this file uses no CASE expression and no transaction statement (D1 wraps the migration in
-- its own).

-- ------------------------------------------------------------------------------------------------
-- Organisations and their settings

-- The shard's copy of the org row, which the org's tables reference. It is created with the org's
-- defaults when the directory places the org on this shard; the JWT `org` claim is the id. The directory's `orgs` row is the authority on where the org lives, and holds
-- its website site key.
CREATE TABLE orgs (
    id TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at)
) STRICT;

-- An org's scoring settings. No row means the domain crate's defaults (the seed's weights,
-- thresholds 6 and 16, no decay): the defaults live in one place, the domain crate, not here.
-- config_version is bumped on every change; a lead whose scored_config_version is older needs a
-- rescore (see the leads_org_scored_version index).
CREATE TABLE scoring_configs (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    weights TEXT NOT NULL CHECK (json_valid(weights) AND json_type(weights) = 'object'),
    warm_threshold REAL NOT NULL CHECK (warm_threshold >= 0),
    hot_threshold REAL NOT NULL CHECK (hot_threshold >= warm_threshold),
    -- NULL: no decay (the default, which reproduces the seed's numbers exactly).
    decay_half_life_days REAL CHECK (decay_half_life_days > 0),
    config_version INTEGER NOT NULL DEFAULT 1 CHECK (config_version >= 1),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at)
) STRICT;

-- Pipeline stages, ordered per org by rank_key: a fractional index (shared/src/ranking.rs, keys
-- over 0-9A-Za-z compared in ASCII order), so reordering rewrites one row. rank_key must keep the
-- default BINARY collation: NOCASE would put `a` and `A` together and break the order.
-- The stage name is unique per org regardless of case (`Won` and `won` would confuse everyone);
-- NOCASE folds ASCII letters only.
CREATE TABLE pipeline_stages (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE CHECK (name <> ''),
    rank_key TEXT NOT NULL COLLATE BINARY CHECK (rank_key <> ''),
    is_closed INTEGER NOT NULL DEFAULT 0 CHECK (is_closed IN (0, 1)),
    -- Won is a kind of closed (defaults: Won and Lost are both closed, Won alone is won).
    is_won INTEGER NOT NULL DEFAULT 0 CHECK (is_won IN (0, 1) AND is_won <= is_closed),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    UNIQUE (org_id, name),
    -- Redundant with the primary key as a uniqueness rule; it exists as the parent key of the
    -- leads (org_id, stage_id) foreign key, which thereby also guarantees that a lead's stage
    -- belongs to the lead's own org.
    UNIQUE (org_id, id)
) STRICT;

CREATE INDEX pipeline_stages_org_rank ON pipeline_stages (org_id, rank_key);

-- Custom field definitions per org; lead values live in leads.custom_fields keyed by `key`.
CREATE TABLE custom_field_defs (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key TEXT NOT NULL CHECK (key <> ''),
    label TEXT NOT NULL,
    field_type TEXT NOT NULL CHECK (field_type IN ('text', 'number', 'date', 'boolean', 'select', 'multiselect', 'url', 'email')),
    -- The allowed values of select / multiselect fields; [] for the other types.
    options TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(options) AND json_type(options) = 'array'),
    required INTEGER NOT NULL DEFAULT 0 CHECK (required IN (0, 1)),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    UNIQUE (org_id, key)
) STRICT;

-- ------------------------------------------------------------------------------------------------
-- Leads

-- leads stays a rowid table (no WITHOUT ROWID): the rowid is the key of the external-content
-- full-text index leads_fts below. Caveats that follow from it:
--   * Never write leads with INSERT OR REPLACE / REPLACE: the implicit delete fires no delete
--     trigger (recursive_triggers is off) and would leave leads_fts stale. Use UPSERT
--     (INSERT ... ON CONFLICT (id) DO UPDATE), which fires the update trigger.
--   * A VACUUM, or a rebuild of the table (the way to change one of its CHECKs later), may
--     renumber the rowids of a table without an INTEGER PRIMARY KEY. After either, recreate the
--     triggers if needed and run INSERT INTO leads_fts (leads_fts) VALUES ('rebuild').
CREATE TABLE leads (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- Identity fields are all optional: a social lead may be known only by a handle (kept in
    -- social_profiles). Names compare and sort case-insensitively, as does the leads_org_name
    -- index.
    first_name TEXT COLLATE NOCASE,
    last_name TEXT COLLATE NOCASE,
    email TEXT,
    -- Trimmed, lower-cased email and E.164-ish digits of the phone, computed by the app: the keys
    -- leads are matched (deduplicated) on. Not UNIQUE: two leads may legitimately share one until
    -- a user merges them, and a concurrent duplicate is resolved by a merge rather than an error.
    email_normalized TEXT,
    phone TEXT,
    phone_normalized TEXT,
    company TEXT,
    title TEXT,
    source TEXT NOT NULL CHECK (source IN ('website', 'facebook', 'instagram', 'linkedin', 'referral', 'direct', 'other')),
    -- Campaign, form, page, ... of the source.
    source_detail TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(source_detail) AND json_type(source_detail) = 'object'),
    -- (org_id, stage_id) references the stage, so a stage of another org is refused. The default
    -- NO ACTION refuses deleting a stage that still holds leads (move them first); deleting the
    -- org removes both in the same statement, which passes.
    stage_id TEXT,
    -- Fractional position within the stage (shared/src/ranking.rs); BINARY collation on purpose.
    rank_key TEXT COLLATE BINARY CHECK (rank_key <> ''),
    owner_id TEXT,
    -- The tags as the API returns them; lead_tags holds one row per tag for filtering, and the app
    -- writes both in one batch.
    tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    -- Values keyed by custom_field_defs.key, validated by the app against the definitions.
    custom_fields TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom_fields) AND json_type(custom_fields) = 'object'),
    heat_score REAL NOT NULL DEFAULT 0,
    heat_level TEXT NOT NULL DEFAULT 'COLD' CHECK (heat_level IN ('COLD', 'WARM', 'HOT')),
    heat_trend REAL NOT NULL DEFAULT 0,
    -- Bumped on every write of the score (interaction insert or scoring job). The scoring job
    -- reads it with the interactions and writes back `... WHERE id = ? AND heat_stamp = ?`, so a
    -- score computed from a stale set of interactions is never stored over a newer one.
    heat_stamp INTEGER NOT NULL DEFAULT 0 CHECK (heat_stamp >= 0),
    scored_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', scored_at) IS scored_at),
    -- The scoring_configs.config_version the score was computed with (0: never by the job).
    scored_config_version INTEGER NOT NULL DEFAULT 0 CHECK (scored_config_version >= 0),
    needs_rescore INTEGER NOT NULL DEFAULT 0 CHECK (needs_rescore IN (0, 1)),
    last_interaction_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_interaction_at) IS last_interaction_at),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    -- Optimistic concurrency: the ETag / If-Match of the API; +1 on every user-visible change.
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- A lead in a stage has a position in it.
    CHECK (stage_id IS NULL OR rank_key IS NOT NULL),
    FOREIGN KEY (org_id, stage_id) REFERENCES pipeline_stages (org_id, id)
) STRICT;

-- List filters and sorts. Each index leads with org_id and ends with id, so a page is one index
-- range read in order, `WHERE org_id = ? AND (sort_key, id) < (?, ?) ORDER BY sort_key DESC,
-- id DESC LIMIT ?`, whatever the org's size, with no sort step. SQLite reads an index backwards
-- as cheaply as forwards, so one index serves both directions.
CREATE INDEX leads_org_heat ON leads (org_id, heat_score, id);
CREATE INDEX leads_org_created ON leads (org_id, created_at, id);
-- The two nullable sort keys are indexed as the expressions the lead list sorts by
-- (functions/edge/src/store/leads.rs): COALESCE(col, '') makes a missing value the smallest one,
-- which is where SQLite puts NULLs anyway, and keeps the keyset a plain row-value comparison (a
-- comparison with a NULL is never true, so a NULL sort key would end the pages early). SQLite
-- uses an expression index only for the identical expression, collation included: a query that
-- sorts by the bare column gets a full sort of the org instead, so keep the two in step. To seek
-- to the cursor (rather than read the org's rows from the start and filter), the query also needs
-- a scalar bound on the expression next to the row-value keyset, for example
--   AND COALESCE(l.last_interaction_at, '') <= ?2 AND (COALESCE(l.last_interaction_at, ''), l.id) < (?2, ?3)
-- (SQLite does not seek an expression index with a row-value comparison alone).
CREATE INDEX leads_org_last_interaction ON leads (org_id, COALESCE(last_interaction_at, ''), id);
CREATE INDEX leads_org_name ON leads (org_id, COALESCE(last_name, '') COLLATE NOCASE, COALESCE(first_name, '') COLLATE NOCASE, id);
-- Filter by heat level, sorted by score (the default view); also the dashboard's level counts.
CREATE INDEX leads_org_level_heat ON leads (org_id, heat_level, heat_score, id);
-- Filter by source, newest first; also the dashboard's source counts.
CREATE INDEX leads_org_source_created ON leads (org_id, source, created_at, id);
-- The pipeline board (one stage's leads in position order), the stage filter and the dashboard's
-- stage counts; it also serves the (org_id, stage_id) foreign key. id breaks ties between equal
-- rank keys (two concurrent moves into the same gap) so the order is still total.
CREATE INDEX leads_org_stage_rank ON leads (org_id, stage_id, rank_key, id);
CREATE INDEX leads_org_owner_created ON leads (org_id, owner_id, created_at, id);
-- Trending leads: largest rises (DESC) and falls (ASC).
CREATE INDEX leads_org_trend ON leads (org_id, heat_trend, id);
-- Deduplication lookups. Partial: most social leads have neither, and a NULL is never looked up.
-- A query `email_normalized = ?` implies IS NOT NULL, so SQLite uses the partial index.
CREATE INDEX leads_org_email ON leads (org_id, email_normalized) WHERE email_normalized IS NOT NULL;
CREATE INDEX leads_org_phone ON leads (org_id, phone_normalized) WHERE phone_normalized IS NOT NULL;
-- The scoring job's work queue: only flagged leads are in it, so it stays small however many
-- leads there are, and `WHERE needs_rescore = 1` drains it in batches without a cursor (the job
-- clears the flag as it writes each score). org_id first: the job works org by org, with that
-- org's config.
CREATE INDEX leads_needs_rescore ON leads (org_id, id) WHERE needs_rescore = 1;
-- After a config change: `WHERE org_id = ? AND scored_config_version < ?` finds the leads scored
-- with an older version (self-draining too); `scored_config_version = ? AND id > ?` walks every
-- lead of an org in id order for a full pass (decay), resuming from rescore_runs.cursor_lead_id.
CREATE INDEX leads_org_scored_version ON leads (org_id, scored_config_version, id);

-- Free text search (`q`) over names, email and company. External content: the text lives once,
-- in leads; the FTS index stores tokens and rowids only. remove_diacritics 2 lets `zoe` find
-- `Zoë`; the 2- and 3-character prefix indexes make the short `jan*` prefixes typed in a search
-- box cheap. The index is global (FTS5 cannot partition by org), so the app lets it drive and
-- filters on org_id after joining back on rowid:
--   SELECT l.* FROM leads_fts CROSS JOIN leads l ON l.rowid = leads_fts.rowid
--   WHERE leads_fts MATCH ? AND l.org_id = ?
-- CROSS JOIN pins that join order; with a plain JOIN and no statistics SQLite may walk every lead
-- of the org instead and probe the full-text index once per lead.
CREATE VIRTUAL TABLE leads_fts USING fts5 (
    first_name,
    last_name,
    email,
    company,
    content = 'leads',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER leads_fts_after_insert AFTER INSERT ON leads
BEGIN
    INSERT INTO leads_fts (rowid, first_name, last_name, email, company)
    VALUES (NEW.rowid, NEW.first_name, NEW.last_name, NEW.email, NEW.company);
END;

-- An external-content FTS5 row is removed by handing it the exact old values.
CREATE TRIGGER leads_fts_after_delete AFTER DELETE ON leads
BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, first_name, last_name, email, company)
    VALUES ('delete', OLD.rowid, OLD.first_name, OLD.last_name, OLD.email, OLD.company);
END;

-- Only when an indexed column is written: score updates (every interaction, every scoring run)
-- leave the full-text index alone.
CREATE TRIGGER leads_fts_after_update AFTER UPDATE OF first_name, last_name, email, company ON leads
BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, first_name, last_name, email, company)
    VALUES ('delete', OLD.rowid, OLD.first_name, OLD.last_name, OLD.email, OLD.company);
    INSERT INTO leads_fts (rowid, first_name, last_name, email, company)
    VALUES (NEW.rowid, NEW.first_name, NEW.last_name, NEW.email, NEW.company);
END;

-- One row per (lead, tag): the tag filter `lead_tags WHERE org_id = ? AND tag = ?`.
-- WITHOUT ROWID: the row is its key, so the table is one B-tree instead of a table plus an index.
CREATE TABLE lead_tags (
    org_id TEXT NOT NULL,
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    tag TEXT NOT NULL CHECK (tag <> ''),
    PRIMARY KEY (lead_id, tag)
) STRICT, WITHOUT ROWID;

CREATE INDEX lead_tags_org_tag ON lead_tags (org_id, tag, lead_id);

-- A lead's identities on each platform. Unique per org: the same platform user is one lead (the
-- social dedupe key), and the constraint is what makes concurrent webhook deliveries converge.
CREATE TABLE social_profiles (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin', 'website', 'email', 'phone', 'in_person', 'other')),
    platform_user_id TEXT NOT NULL CHECK (platform_user_id <> ''),
    handle TEXT,
    url TEXT,
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    UNIQUE (org_id, platform, platform_user_id)
) STRICT;

CREATE INDEX social_profiles_lead ON social_profiles (lead_id);

-- A merged-away lead id and the lead it now lives in, so old links and cursors redirect. When the
-- target is itself merged later, the app repoints these rows (`SET into_lead_id = ? WHERE
-- into_lead_id = ?`, served by the index below) before deleting it; if the target lead is deleted
-- (erased), its redirects go with it.
CREATE TABLE lead_merges (
    org_id TEXT NOT NULL,
    merged_lead_id TEXT PRIMARY KEY NOT NULL,
    into_lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    merged_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', merged_at) IS merged_at),
    CHECK (merged_lead_id <> into_lead_id)
) STRICT;

CREATE INDEX lead_merges_into ON lead_merges (into_lead_id);

-- ------------------------------------------------------------------------------------------------
-- Interactions and heat history

-- Every touchpoint. external_id is the dedupe key, unique per org and platform: webhook and sync
-- ids come from the platform, manual and tracking ones are made by the app. The UNIQUE constraint
-- is what makes at-least-once delivery exactly-once in effect (INSERT ... ON CONFLICT DO NOTHING).
-- points: what the interaction earned under the weights in force when it was captured (shown on
-- the timeline). It is history: after a weights change, the scoring job's recomputation follows
-- the org's current config.
CREATE TABLE interactions (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('social_follow', 'social_like', 'website_visit', 'info_request', 'price_quote', 'site_visit', 'social_comment', 'social_share', 'social_mention', 'direct_message', 'story_view', 'connection_request', 'connection_accepted', 'lead_form', 'email', 'call', 'meeting', 'note', 'stage_change')),
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin', 'website', 'email', 'phone', 'in_person', 'other')),
    occurred_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', occurred_at) IS occurred_at),
    captured_by TEXT NOT NULL CHECK (captured_by IN ('manual', 'webhook', 'sync', 'tracking')),
    points REAL NOT NULL,
    external_id TEXT NOT NULL CHECK (external_id <> ''),
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    UNIQUE (org_id, platform, external_id)
) STRICT;

-- A lead's timeline, newest first, keyset on (occurred_at, id); also the scoring job's read of a
-- lead's interactions, the merge's re-parenting, and the lead_id foreign key.
CREATE INDEX interactions_lead_occurred ON interactions (lead_id, occurred_at, id);
-- The org-wide feed and the dashboard's engagement window.
CREATE INDEX interactions_org_occurred ON interactions (org_id, occurred_at, id);
-- The feed filtered by platform.
CREATE INDEX interactions_org_platform_occurred ON interactions (org_id, platform, occurred_at, id);
-- The feed filtered by type.
CREATE INDEX interactions_org_type_occurred ON interactions (org_id, type, occurred_at, id);

-- One score per lead per UTC day, written by the nightly job (UPSERT, so a second run the same day
-- overwrites). The trend compares the last 7 days with the 7 before, read by primary key range.
CREATE TABLE heat_snapshots (
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    day TEXT NOT NULL CHECK (date(day) IS day),
    org_id TEXT NOT NULL,
    score REAL NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('COLD', 'WARM', 'HOT')),
    PRIMARY KEY (lead_id, day)
) STRICT, WITHOUT ROWID;

CREATE INDEX heat_snapshots_org_day ON heat_snapshots (org_id, day);

-- Every change of a lead's heat level (for "became HOT" notifications and the dashboard).
CREATE TABLE heat_level_changes (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    old_level TEXT NOT NULL CHECK (old_level IN ('COLD', 'WARM', 'HOT')),
    new_level TEXT NOT NULL CHECK (new_level IN ('COLD', 'WARM', 'HOT')),
    changed_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', changed_at) IS changed_at),
    CHECK (old_level <> new_level)
) STRICT;

CREATE INDEX heat_level_changes_org_changed ON heat_level_changes (org_id, changed_at);
-- Not in any API query: it serves the lead_id foreign key (and a lead's export).
CREATE INDEX heat_level_changes_lead ON heat_level_changes (lead_id, changed_at);

-- ------------------------------------------------------------------------------------------------
-- Social integrations and the webhook pipeline

-- One row per org and platform. The access token is AES-GCM sealed with TOKEN_ENCRYPTION_KEY;
-- token_key_id names the key that sealed it, so the key can be rotated and old tokens re-sealed.
-- metrics: aggregate platform numbers that belong to no lead (e.g. Instagram story insights).
CREATE TABLE integrations (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    token_ciphertext TEXT,
    token_key_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('connected', 'needs_token', 'disconnected')),
    last_event_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_event_at) IS last_event_at),
    last_error TEXT,
    last_error_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_error_at) IS last_error_at),
    metrics TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics) AND json_type(metrics) = 'object'),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    PRIMARY KEY (org_id, platform),
    -- A ciphertext is useless without the id of the key that sealed it.
    CHECK ((token_ciphertext IS NULL) = (token_key_id IS NULL)),
    CHECK (status <> 'connected' OR token_ciphertext IS NOT NULL)
) STRICT;

-- Every signed webhook delivery for an account an org has connected, stored on that org's shard
-- before it is acknowledged: the durable record that makes "nothing is lost" true even when a
-- queue message is. The webhook worker resolves the account through the directory's
-- integration_accounts at receipt, so org_id is always set; deliveries for accounts no org
-- connected never come here (the directory's webhook_unrouted counts them, without their body).
-- Life cycle:
--   pending -> processing (lease_until set; a consumer that dies lets the lease expire)
--           -> processed | ignored (the account was disconnected before the row was processed) |
--              pending again with next_attempt_at (backoff) | dead after the last attempt
--              (replayable: back to pending).
-- org_id is kept nullable for simplicity, though the app always sets it. No foreign keys: the
-- inbox is a log that must accept every signed delivery routed here before anything else about
-- it is known.
CREATE TABLE webhook_inbox (
    id TEXT PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    -- Derived from the event (platform ids and times), so a redelivery maps to the same row:
    -- INSERT ... ON CONFLICT (platform, dedupe_key) DO NOTHING.
    dedupe_key TEXT NOT NULL CHECK (dedupe_key <> ''),
    account_id TEXT,
    org_id TEXT,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', received_at) IS received_at),
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'processed', 'ignored', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: due now. Pending work is `status = 'pending' AND (next_attempt_at IS NULL OR
    -- next_attempt_at <= ?)`; NULLs sort first, so fresh events go before retries.
    next_attempt_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', next_attempt_at) IS next_attempt_at),
    lease_until TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', lease_until) IS lease_until),
    last_error TEXT,
    processed_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', processed_at) IS processed_at),
    UNIQUE (platform, dedupe_key)
) STRICT;

-- The reconciler: due pending events (and processing ones whose lease expired, by status).
CREATE INDEX webhook_inbox_status_next ON webhook_inbox (status, next_attempt_at);
-- Integration status: processed / pending / dead counts per org and platform, and the dead
-- letters to replay.
CREATE INDEX webhook_inbox_org_platform_status ON webhook_inbox (org_id, platform, status);
-- Retention: pruning old processed and ignored events by age.
CREATE INDEX webhook_inbox_received ON webhook_inbox (received_at);

-- Outbound rate limiting and the circuit breaker, per org and platform. Meta's X-App-Usage is
-- app-wide rather than per org: the app keeps that under a reserved org_id of its choosing,
-- which is why org_id has no foreign key here.
CREATE TABLE platform_throttles (
    org_id TEXT NOT NULL,
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    -- No call before this instant (the platform's throttle answer, or our own backoff).
    blocked_until TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', blocked_until) IS blocked_until),
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- Open circuit: no call until then, after which one probe call decides.
    circuit_open_until TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', circuit_open_until) IS circuit_open_until),
    -- The last usage headers seen (X-App-Usage / X-Business-Use-Case-Usage), parsed.
    last_usage TEXT CHECK (last_usage IS NULL OR json_valid(last_usage)),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    PRIMARY KEY (org_id, platform)
) STRICT;

-- ------------------------------------------------------------------------------------------------
-- API plumbing (the request rate limit counters are the directory's: a limit is not one org's data)

-- Idempotency-Key replay: the first response to a key is stored and replayed for the same
-- request (same request_hash); a different request under the same key is refused. status_code and
-- response_body are NULL while the first request is still in flight (the row is claimed first).
CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL,
    idem_key TEXT NOT NULL CHECK (idem_key <> ''),
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER CHECK (status_code BETWEEN 100 AND 599),
    response_body TEXT,
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    PRIMARY KEY (org_id, idem_key)
) STRICT;

-- Pruning keys past their retention.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- ------------------------------------------------------------------------------------------------
-- Rescoring (the scheduled jobs' leases and run records are the directory's: a run spans every
-- shard)

-- A requested full recalculation of one org (POST scoring recalculation, or a config change),
-- worked through in batches by the scoring job, which resumes after cursor_lead_id.
CREATE TABLE rescore_runs (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done')),
    cursor_lead_id TEXT,
    leads_done INTEGER NOT NULL DEFAULT 0 CHECK (leads_done >= 0),
    leads_total INTEGER NOT NULL DEFAULT 0 CHECK (leads_total >= 0),
    -- The scoring_configs.config_version this run scores with.
    config_version INTEGER NOT NULL CHECK (config_version >= 0),
    requested_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', requested_at) IS requested_at),
    started_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', started_at) IS started_at),
    finished_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', finished_at) IS finished_at)
) STRICT;

-- The job's next run to work on: the unfinished ones, oldest request first.
CREATE INDEX rescore_runs_status ON rescore_runs (status, requested_at);

-- ------------------------------------------------------------------------------------------------
-- Website tracking

-- A browser (visitor id from the site's script) seen by an org; lead_id once it identified itself.
-- last_visit_touch_at is when its last `website_visit` interaction was recorded: a new one is
-- written only 30 minutes or more after it (one per session). Deleting (erasing) the lead keeps
-- the anonymous visitor and forgets who it was.
CREATE TABLE tracking_visitors (
    org_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL CHECK (visitor_id <> ''),
    lead_id TEXT REFERENCES leads (id) ON DELETE SET NULL,
    last_visit_touch_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_visit_touch_at) IS last_visit_touch_at),
    first_seen_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', first_seen_at) IS first_seen_at),
    last_seen_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_seen_at) IS last_seen_at),
    PRIMARY KEY (org_id, visitor_id)
) STRICT;

CREATE INDEX tracking_visitors_lead ON tracking_visitors (lead_id);

-- Raw website events. Anonymous page views stay here with attributed = 0 until the visitor
-- identifies; they then become the lead's website_visit interactions and are marked attributed.
CREATE TABLE tracking_events (
    id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('page_view', 'info_request', 'price_quote')),
    url TEXT,
    occurred_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', occurred_at) IS occurred_at),
    attributed INTEGER NOT NULL DEFAULT 0 CHECK (attributed IN (0, 1))
) STRICT;

-- A visitor's events in time order (attribution when it identifies, session detection).
CREATE INDEX tracking_events_org_visitor ON tracking_events (org_id, visitor_id, occurred_at);
