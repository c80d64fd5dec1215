-- Leadheat: the schema of the directory, the one D1 database every worker binds as DB (applied by
-- `wrangler d1 migrations apply`, with migrations_dir "migrations/directory"). The directory knows
-- where each org lives and keeps what belongs to no single org. Everything of an org (leads,
-- interactions, integrations, the webhook inbox, ...) lives on the tenant shard the directory
-- placed it on: the SHARD_0 ... SHARD_{N-1} databases, whose schema is migrations/tenant/.
--
-- The tables follow the conventions stated at the top of migrations/tenant/0001_initial.sql:
-- STRICT, ids made by the app, timestamps as RFC 3339 UTC with milliseconds and a `Z` checked
-- with `strftime('%Y-%m-%dT%H:%M:%fZ', col) IS col`, JSON checked with json_valid, booleans as
-- INTEGER 0/1, enumerations as `col IN (...)` CHECK lists of the domain crate's wire strings
-- (tests/tests/schema.rs compares the two), and an index led by the child columns of every foreign
-- key.
--
-- The two sets share one table name, `orgs`: this one says where an org lives; a shard's `orgs`
-- row is the parent of the org's rows there.
--
-- For wrangler's statement splitter: this file uses no trigger, no CASE expression and no
-- transaction statement (D1 wraps the migration in its own).

-- ------------------------------------------------------------------------------------------------
-- Organisations

-- One row per org, written on the org's first authenticated request (the JWT `org` claim is the
-- id): the directory places the org on a shard, then creates the org's row and defaults there.
--   * shard: the index k of the SHARD_k binding that holds the org's data. Shards are numbered
--     from 0 without gaps (wrangler.toml); an org is never placed on a shard a worker lacks.
--   * site_key: the public key in `POST /track/<site_key>` that maps the company website to its
--     org. It is here, not on the shard, because a tracking request names only the key and must
--     find the org (and so its shard) from it.
--   * ready: 0 until the org's defaults exist on its shard. Placing an org is safe to race (every
--     insert ignores a conflict and the winner's row is read back) and to fail half-way: a request
--     that finds 0 writes the defaults again (they ignore conflicts too) and then sets 1.
--   * moving_to: set while a shard move copies the org to that shard; the org's requests are
--     refused meanwhile, since its rows are being copied. Once the copy holds exactly the source's
--     rows, the move sets `shard` to `moving_to` and clears it (an aborted move just clears it).
--     NULL when no move is under way.
CREATE TABLE orgs (
    id TEXT PRIMARY KEY NOT NULL,
    shard INTEGER NOT NULL CHECK (shard >= 0),
    site_key TEXT NOT NULL UNIQUE CHECK (site_key <> ''),
    ready INTEGER NOT NULL DEFAULT 0 CHECK (ready IN (0, 1)),
    moving_to INTEGER CHECK (moving_to >= 0),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    -- A move goes somewhere else.
    CHECK (moving_to IS NULL OR moving_to <> shard)
) STRICT;

-- The orgs of one shard, in id order: counting them to place a new org on the least loaded
-- shard, and walking them (keyset on id) for a shard's jobs and moves.
CREATE INDEX orgs_shard ON orgs (shard, id);

-- ------------------------------------------------------------------------------------------------
-- Webhook routing

-- Which org an incoming event belongs to: the webhook payload names a platform account (Facebook
-- page, Instagram account, LinkedIn organisation or sponsored ad account), never an org. The
-- primary key makes an account belong to one org at a time, across all shards: connecting it is
-- an insert here, so two orgs on different shards cannot both connect it.
CREATE TABLE integration_accounts (
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    account_id TEXT NOT NULL CHECK (account_id <> ''),
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('page', 'instagram_account', 'organization', 'sponsored_account')),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    PRIMARY KEY (platform, account_id),
    -- Each platform has its own kinds of account.
    CHECK ((platform = 'facebook' AND kind = 'page')
        OR (platform = 'instagram' AND kind = 'instagram_account')
        OR (platform = 'linkedin' AND kind IN ('organization', 'sponsored_account')))
) STRICT;

-- An org's accounts (its integrations page, disconnecting); also the org_id foreign key.
CREATE INDEX integration_accounts_org ON integration_accounts (org_id, platform);

-- Signed deliveries for accounts no org has connected. No body is kept: the data is nobody's, so
-- only enough is stored to dedupe a redelivery (the same (platform, dedupe_key) as the inbox
-- would use: INSERT ... ON CONFLICT DO NOTHING) and to show that such deliveries arrive, for
-- which account and when. Connecting the account later does not replay them.
CREATE TABLE webhook_unrouted (
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    dedupe_key TEXT NOT NULL CHECK (dedupe_key <> ''),
    -- NULL when the delivery names no account the app could read.
    account_id TEXT,
    received_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', received_at) IS received_at),
    PRIMARY KEY (platform, dedupe_key)
) STRICT, WITHOUT ROWID;

-- Retention: pruning old rows by age.
CREATE INDEX webhook_unrouted_received ON webhook_unrouted (received_at);

-- ------------------------------------------------------------------------------------------------
-- API plumbing

-- Fixed-window request counters (`bucket` names who and what is limited). Rows are tiny and
-- hot; WITHOUT ROWID keeps each one a single B-tree entry.
CREATE TABLE rate_limits (
    bucket TEXT NOT NULL,
    window_start TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', window_start) IS window_start),
    count INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (bucket, window_start)
) STRICT, WITHOUT ROWID;

-- Pruning past windows.
CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- ------------------------------------------------------------------------------------------------
-- Scheduled jobs (one run works through every shard, so its lease and record are here)

-- Mutual exclusion between overlapping cron runs: a job takes its lease with
-- `INSERT ... ON CONFLICT (name) DO UPDATE SET holder = ?, lease_until = ? WHERE lease_until < ?`
-- and proceeds only if the row is now its own.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    lease_until TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', lease_until) IS lease_until)
) STRICT;

-- One row per scheduled run, with what it did (observability; the foundation end-to-end test
-- reads it). finished_at is NULL while a run that records its start is still going.
CREATE TABLE job_runs (
    id TEXT PRIMARY KEY NOT NULL,
    job TEXT NOT NULL,
    cron TEXT NOT NULL,
    started_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', started_at) IS started_at),
    finished_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', finished_at) IS finished_at),
    summary TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(summary))
) STRICT;

-- A job's recent runs (and their pruning).
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);
