-- Orgs whose rescoring failed, and when the scoring job tries them again. A row exists only while
-- an org keeps failing: the job leaves the org out until retry_at (one minute after the first
-- failure, doubling up to six hours: leadheat_domain::rescoring::retry_after_failure), so one
-- broken org costs each run nothing, and the row goes away with the org's next success.
CREATE TABLE scoring_backoff (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    failures INTEGER NOT NULL CHECK (failures >= 1),
    last_error TEXT NOT NULL CHECK (length(last_error) <= 2000),
    failed_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', failed_at) IS failed_at),
    retry_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', retry_at) IS retry_at)
) STRICT;
