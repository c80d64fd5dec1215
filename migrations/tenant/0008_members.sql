-- The org's members: the people the API has seen sign in (the token's `sub`), with the name and
-- email their token carries, so owner pickers and filters show people rather than user ids. A
-- lead's owner_id stays the `sub`. Written at most once a day per member, or when the name, email
-- or role in the token changes (functions/api/src/members.rs).
CREATE TABLE members (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL CHECK (user_id <> ''),
    name TEXT,
    email TEXT,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    first_seen_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', first_seen_at) IS first_seen_at),
    last_seen_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', last_seen_at) IS last_seen_at),
    PRIMARY KEY (org_id, user_id)
) STRICT, WITHOUT ROWID;
