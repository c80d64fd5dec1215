-- The dashboard's rollups (docs/dashboard.md): per-org counts that GET /v1/dashboard reads instead
-- of counting leads and scanning touchpoints. They are derived data: triggers on the base tables
-- keep them exact inside the transaction of every write, whichever worker makes it (API, sync
-- consumer, tracking, merges, erasure, the scoring job, a shard move's copy), and the scoring
-- worker's /ops/orgs/{org}/rollups/rebuild recomputes one org's from the base tables.
--
-- Each trigger does one indexed UPSERT per row written (two when a counted column changes), and
-- the UPDATE triggers have a WHEN clause, so the score writes of every touchpoint (which set
-- heat_level to the same value most of the time) cost nothing more.
--
-- A count can reach 0 and stay as a row (a lead moved out of a stage, a touchpoint deleted):
-- readers treat a missing row and a 0 alike; a rebuild writes no zero rows.
--
-- Shard moves do not copy these tables (leadheat_domain::sharding::DERIVED_TABLES): copying the
-- base rows fires the triggers on the target, and deleting the org row removes the org's rollups
-- (trigger orgs_after_delete_rollups), when a move clears a target or deletes its source.

-- Current leads by heat level, source and stage ('' when the lead is in no stage): the dashboard's
-- by_heat_level, by_source, by_stage, unstaged, leads and hot_leads now. At most 3 x 7 x stages
-- rows per org.
CREATE TABLE dashboard_lead_counts (
    org_id TEXT NOT NULL,
    heat_level TEXT NOT NULL CHECK (heat_level IN ('COLD', 'WARM', 'HOT')),
    source TEXT NOT NULL,
    stage_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (org_id, heat_level, source, stage_id)
) STRICT, WITHOUT ROWID;

-- Per UTC day of the leads' created_at: leads created that day (still there), and the day's heat
-- level changes into HOT minus those out of HOT (the running sum of hot_net before a day is the
-- number of leads HOT at its midnight).
CREATE TABLE dashboard_lead_days (
    org_id TEXT NOT NULL,
    day TEXT NOT NULL CHECK (date(day) IS day),
    created INTEGER NOT NULL DEFAULT 0,
    hot_net INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, day)
) STRICT, WITHOUT ROWID;

-- Touchpoints per UTC day of occurred_at, platform and type: the touchpoint totals and the social
-- engagement (per platform and type, and per day).
CREATE TABLE dashboard_touch_days (
    org_id TEXT NOT NULL,
    day TEXT NOT NULL CHECK (date(day) IS day),
    platform TEXT NOT NULL,
    type TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (org_id, day, platform, type)
) STRICT, WITHOUT ROWID;

-- ------------------------------------------------------------------------------------------------
-- leads

CREATE TRIGGER leads_after_insert_rollups AFTER INSERT ON leads
BEGIN
    INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n)
    VALUES (NEW.org_id, NEW.heat_level, NEW.source, COALESCE(NEW.stage_id, ''), 1)
    ON CONFLICT (org_id, heat_level, source, stage_id) DO UPDATE SET n = n + 1;
    INSERT INTO dashboard_lead_days (org_id, day, created)
    VALUES (NEW.org_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (org_id, day) DO UPDATE SET created = created + 1;
END;

CREATE TRIGGER leads_after_delete_rollups AFTER DELETE ON leads
BEGIN
    INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n)
    VALUES (OLD.org_id, OLD.heat_level, OLD.source, COALESCE(OLD.stage_id, ''), -1)
    ON CONFLICT (org_id, heat_level, source, stage_id) DO UPDATE SET n = n - 1;
    INSERT INTO dashboard_lead_days (org_id, day, created)
    VALUES (OLD.org_id, substr(OLD.created_at, 1, 10), -1)
    ON CONFLICT (org_id, day) DO UPDATE SET created = created - 1;
END;

CREATE TRIGGER leads_after_update_counts_rollups AFTER UPDATE OF org_id, heat_level, source, stage_id ON leads
WHEN OLD.org_id IS NOT NEW.org_id OR OLD.heat_level IS NOT NEW.heat_level
    OR OLD.source IS NOT NEW.source OR OLD.stage_id IS NOT NEW.stage_id
BEGIN
    INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n)
    VALUES (OLD.org_id, OLD.heat_level, OLD.source, COALESCE(OLD.stage_id, ''), -1)
    ON CONFLICT (org_id, heat_level, source, stage_id) DO UPDATE SET n = n - 1;
    INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n)
    VALUES (NEW.org_id, NEW.heat_level, NEW.source, COALESCE(NEW.stage_id, ''), 1)
    ON CONFLICT (org_id, heat_level, source, stage_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER leads_after_update_created_rollups AFTER UPDATE OF org_id, created_at ON leads
WHEN OLD.org_id IS NOT NEW.org_id OR OLD.created_at IS NOT NEW.created_at
BEGIN
    INSERT INTO dashboard_lead_days (org_id, day, created)
    VALUES (OLD.org_id, substr(OLD.created_at, 1, 10), -1)
    ON CONFLICT (org_id, day) DO UPDATE SET created = created - 1;
    INSERT INTO dashboard_lead_days (org_id, day, created)
    VALUES (NEW.org_id, substr(NEW.created_at, 1, 10), 1)
    ON CONFLICT (org_id, day) DO UPDATE SET created = created + 1;
END;

-- ------------------------------------------------------------------------------------------------
-- interactions (a merge re-parents them: lead_id is not counted, so that costs nothing)

CREATE TRIGGER interactions_after_insert_rollups AFTER INSERT ON interactions
BEGIN
    INSERT INTO dashboard_touch_days (org_id, day, platform, type, n)
    VALUES (NEW.org_id, substr(NEW.occurred_at, 1, 10), NEW.platform, NEW.type, 1)
    ON CONFLICT (org_id, day, platform, type) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER interactions_after_delete_rollups AFTER DELETE ON interactions
BEGIN
    INSERT INTO dashboard_touch_days (org_id, day, platform, type, n)
    VALUES (OLD.org_id, substr(OLD.occurred_at, 1, 10), OLD.platform, OLD.type, -1)
    ON CONFLICT (org_id, day, platform, type) DO UPDATE SET n = n - 1;
END;

CREATE TRIGGER interactions_after_update_rollups AFTER UPDATE OF org_id, occurred_at, platform, type ON interactions
WHEN OLD.org_id IS NOT NEW.org_id OR substr(OLD.occurred_at, 1, 10) IS NOT substr(NEW.occurred_at, 1, 10)
    OR OLD.platform IS NOT NEW.platform OR OLD.type IS NOT NEW.type
BEGIN
    INSERT INTO dashboard_touch_days (org_id, day, platform, type, n)
    VALUES (OLD.org_id, substr(OLD.occurred_at, 1, 10), OLD.platform, OLD.type, -1)
    ON CONFLICT (org_id, day, platform, type) DO UPDATE SET n = n - 1;
    INSERT INTO dashboard_touch_days (org_id, day, platform, type, n)
    VALUES (NEW.org_id, substr(NEW.occurred_at, 1, 10), NEW.platform, NEW.type, 1)
    ON CONFLICT (org_id, day, platform, type) DO UPDATE SET n = n + 1;
END;

-- ------------------------------------------------------------------------------------------------
-- heat_level_changes: only changes into or out of HOT move hot_net.

CREATE TRIGGER heat_level_changes_after_insert_rollups AFTER INSERT ON heat_level_changes
WHEN NEW.new_level = 'HOT' OR NEW.old_level = 'HOT'
BEGIN
    INSERT INTO dashboard_lead_days (org_id, day, hot_net)
    VALUES (NEW.org_id, substr(NEW.changed_at, 1, 10), (NEW.new_level = 'HOT') - (NEW.old_level = 'HOT'))
    ON CONFLICT (org_id, day) DO UPDATE SET hot_net = hot_net + excluded.hot_net;
END;

CREATE TRIGGER heat_level_changes_after_delete_rollups AFTER DELETE ON heat_level_changes
WHEN OLD.new_level = 'HOT' OR OLD.old_level = 'HOT'
BEGIN
    INSERT INTO dashboard_lead_days (org_id, day, hot_net)
    VALUES (OLD.org_id, substr(OLD.changed_at, 1, 10), (OLD.old_level = 'HOT') - (OLD.new_level = 'HOT'))
    ON CONFLICT (org_id, day) DO UPDATE SET hot_net = hot_net + excluded.hot_net;
END;

CREATE TRIGGER heat_level_changes_after_update_rollups AFTER UPDATE OF org_id, old_level, new_level, changed_at ON heat_level_changes
WHEN OLD.org_id IS NOT NEW.org_id OR OLD.old_level IS NOT NEW.old_level
    OR OLD.new_level IS NOT NEW.new_level OR substr(OLD.changed_at, 1, 10) IS NOT substr(NEW.changed_at, 1, 10)
BEGIN
    INSERT INTO dashboard_lead_days (org_id, day, hot_net)
    VALUES (OLD.org_id, substr(OLD.changed_at, 1, 10), (OLD.old_level = 'HOT') - (OLD.new_level = 'HOT'))
    ON CONFLICT (org_id, day) DO UPDATE SET hot_net = hot_net + excluded.hot_net;
    INSERT INTO dashboard_lead_days (org_id, day, hot_net)
    VALUES (NEW.org_id, substr(NEW.changed_at, 1, 10), (NEW.new_level = 'HOT') - (NEW.old_level = 'HOT'))
    ON CONFLICT (org_id, day) DO UPDATE SET hot_net = hot_net + excluded.hot_net;
END;

-- ------------------------------------------------------------------------------------------------
-- The org row goes last when a move clears or deletes an org (children first): its rollups go
-- with it, zero rows included.

CREATE TRIGGER orgs_after_delete_rollups AFTER DELETE ON orgs
BEGIN
    DELETE FROM dashboard_lead_counts WHERE org_id = OLD.id;
    DELETE FROM dashboard_lead_days WHERE org_id = OLD.id;
    DELETE FROM dashboard_touch_days WHERE org_id = OLD.id;
END;

-- ------------------------------------------------------------------------------------------------
-- Backfill from the rows already there (the same SQL as the rebuild route).

INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n)
SELECT org_id, heat_level, source, COALESCE(stage_id, ''), COUNT(*) FROM leads
GROUP BY org_id, heat_level, source, COALESCE(stage_id, '');

INSERT INTO dashboard_lead_days (org_id, day, created, hot_net)
SELECT org_id, day, SUM(created), SUM(hot_net) FROM (
    SELECT org_id, substr(created_at, 1, 10) AS day, 1 AS created, 0 AS hot_net FROM leads
    UNION ALL
    SELECT org_id, substr(changed_at, 1, 10), 0, (new_level = 'HOT') - (old_level = 'HOT')
    FROM heat_level_changes WHERE new_level = 'HOT' OR old_level = 'HOT'
)
GROUP BY org_id, day
HAVING SUM(created) <> 0 OR SUM(hot_net) <> 0;

INSERT INTO dashboard_touch_days (org_id, day, platform, type, n)
SELECT org_id, substr(occurred_at, 1, 10), platform, type, COUNT(*) FROM interactions
GROUP BY org_id, substr(occurred_at, 1, 10), platform, type;
