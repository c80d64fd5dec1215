-- A lead's running heat state (docs/heat.md; leadheat_domain::heat_state): enough to update its
-- score on a new touchpoint, and to decay it in the scoring job, without reading its touchpoints.
-- Relative to heat_ref_at (R):
--   heat_settled: the decayed points at R of the touches at or before R (without decay: the sum of
--     the weights of every touch);
--   heat_pending: the summed weights of the touches after R (stamped ahead of the clock);
--   heat_next_pending_at: the earliest of those.
-- The state belongs to the config version in scored_config_version. heat_ref_at NULL: no state
-- yet; the lead is rebuilt from its history (by its next touchpoint or the scoring job).
ALTER TABLE leads ADD COLUMN heat_ref_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', heat_ref_at) IS heat_ref_at);
ALTER TABLE leads ADD COLUMN heat_settled REAL NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN heat_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN heat_next_pending_at TEXT CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', heat_next_pending_at) IS heat_next_pending_at);

-- Existing leads have no state: the scoring job's resumable pass rebuilds each from its history.
UPDATE leads SET needs_rescore = 1 WHERE needs_rescore = 0;
