-- Erasure that stays erased, per-user idempotency keys, and the indexes of the nightly retention
-- sweeps (docs/guarantees.md: "Erasure and suppression", "Tracking endpoint", "Retention").

-- ------------------------------------------------------------------------------------------------
-- Idempotency keys belong to a user (the token's `sub`), not just to an org: another user's replay
-- of a key (a viewer replaying an admin's) is a key of its own. The primary key changes, so the
-- table is rebuilt; the stored responses (kept 24 hours for retries) are not carried over, since
-- none of them records its user: a retry across this migration runs again.
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL CHECK (user_id <> ''),
    idem_key TEXT NOT NULL CHECK (idem_key <> ''),
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER CHECK (status_code BETWEEN 100 AND 599),
    response_body TEXT,
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    PRIMARY KEY (org_id, user_id, idem_key)
) STRICT;

-- The nightly sweep of keys past their 24 hours.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- ------------------------------------------------------------------------------------------------
-- Erasure. One row per identity of an erased lead (salted SHA-256 of its normalised email, phone
-- or platform user id; leadheat_domain::suppression) with the latest erasure time: an event that
-- names it and occurred before that time never re-creates the person. No readable value is kept.
CREATE TABLE erasure_suppressions (
    org_id TEXT NOT NULL,
    identity_hash TEXT NOT NULL CHECK (length(identity_hash) = 64),
    erased_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', erased_at) IS erased_at),
    PRIMARY KEY (org_id, identity_hash)
) STRICT, WITHOUT ROWID;

-- Inbox rows that named an erased person but were not processed yet at the erasure: kept so no
-- event is lost (they may hold other people's events), and their bodies replaced by the nightly
-- sweep once processed. No foreign key: like the inbox, this is a log.
CREATE TABLE erasure_inbox_scrubs (
    inbox_id TEXT PRIMARY KEY NOT NULL,
    org_id TEXT NOT NULL,
    requested_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', requested_at) IS requested_at)
) STRICT;

-- ------------------------------------------------------------------------------------------------
-- Website tracking retention: the nightly sweep deletes events by age and visitors by idleness.
CREATE INDEX tracking_events_occurred ON tracking_events (occurred_at);
CREATE INDEX tracking_visitors_last_seen ON tracking_visitors (last_seen_at);
