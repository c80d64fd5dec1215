-- The UI's live-update poll (GET /v1/changes, every 2 s per open page) asks for the newest
-- interaction and the newest lead change of one org. These indexes make each a single lookup at
-- the end of the org's range instead of a read of all its rows.
CREATE INDEX interactions_org_created ON interactions (org_id, created_at);
CREATE INDEX leads_org_updated ON leads (org_id, updated_at);

-- Per-lead reads say `WHERE lead_id = ? AND org_id = ?`. Without statistics SQLite rates an
-- equality on lead_id and one on org_id alike and may walk an org-first index, reading the whole
-- org (seconds at a million touchpoints: found by `make bench`). With both columns in the
-- lead-first index, it is the only index matching two equalities, so it always wins. lead_id still
-- leads it, so it keeps serving the foreign key's cascade.
DROP INDEX interactions_lead_occurred;
CREATE INDEX interactions_lead_org_occurred ON interactions (lead_id, org_id, occurred_at, id);
DROP INDEX social_profiles_lead;
CREATE INDEX social_profiles_lead_org ON social_profiles (lead_id, org_id);
