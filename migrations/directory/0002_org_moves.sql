-- Leadheat directory: the state of shard moves (docs/scaling.md, "Moving an org between shards").
--
-- One row per org that was ever moved: the latest move of the org (starting a new move replaces a
-- finished one). A move is a resumable job: each invocation of the scoring worker that advances it
-- (the operator route `POST /ops/orgs/{org}/move`, `POST /ops/moves/advance`, or its cron) does a
-- bounded number of D1 queries and records here where it stopped; the next one resumes there.
--   * phase: 'clearing' (the target's leftovers of the org, from an earlier attempt, are deleted,
--     children first), 'copying' (table by table in foreign-key order, keyset pages), 'verifying'
--     (row counts per table on both shards), 'deleting' (the copy that is not the org's home is
--     deleted, children first: the source after a verified copy, the copy after a failed one),
--     then 'done', or 'failed' when the verification failed (`error` says why).
--   * current_table: the table the clearing, copying or deleting phase is at (NULL otherwise).
--   * cursor: while copying, the page key of the last row copied of `current_table` (a JSON array
--     of the key columns' values); NULL at the start of a table.
--   * counts: rows per table: copied, cleared and deleted so far, and the counts verified on the
--     source and on the copy (JSON object).
-- The org's `orgs.moving_to` is set from the start of the move until the directory is flipped (or
-- the failed verification cleared it). The `leadheat_domain::sharding` module holds the phases
-- and the table list; tests/tests/schema.rs checks both against the schemas.
CREATE TABLE org_moves (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    from_shard INTEGER NOT NULL CHECK (from_shard >= 0),
    to_shard INTEGER NOT NULL CHECK (to_shard >= 0),
    phase TEXT NOT NULL CHECK (phase IN ('clearing', 'copying', 'verifying', 'deleting', 'done', 'failed')),
    current_table TEXT,
    cursor TEXT CHECK (cursor IS NULL OR (json_valid(cursor) AND json_type(cursor) = 'array')),
    counts TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(counts) AND json_type(counts) = 'object'),
    error TEXT,
    started_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', started_at) IS started_at),
    updated_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', updated_at) IS updated_at),
    finished_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', finished_at) IS finished_at),
    CHECK (from_shard <> to_shard),
    -- A move has finished exactly when it is done or failed.
    CHECK ((finished_at IS NULL) = (phase NOT IN ('done', 'failed')))
) STRICT;

-- The unfinished moves (the advance route and the cron), and the moves touching a shard (its
-- sweeps leave their orgs alone).
CREATE INDEX org_moves_phase ON org_moves (phase, updated_at);
