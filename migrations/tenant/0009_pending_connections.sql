-- Connections waiting for the admin's pick (docs/connect.md). The OAuth callback exchanges the
-- platform's code, lists the accounts the person administers, and keeps them here for 15 minutes:
-- `candidates` (ids and names, never a token) is what the picker shows; `secrets_ciphertext` is
-- the person's token and the page tokens Graph derived, sealed with TOKEN_ENCRYPTION_KEY and bound
-- to the org and this row's id. Only the user who started the connection may read or complete it;
-- completing deletes the row, and expired rows are deleted when the org's next connect starts.
CREATE TABLE pending_connections (
    id TEXT NOT NULL CHECK (id <> ''),
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL CHECK (user_id <> ''),
    platform TEXT NOT NULL CHECK (platform IN ('facebook', 'instagram', 'linkedin')),
    candidates TEXT NOT NULL CHECK (json_valid(candidates) AND json_type(candidates) = 'array'),
    secrets_ciphertext TEXT NOT NULL CHECK (secrets_ciphertext <> ''),
    token_key_id TEXT NOT NULL,
    expires_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', expires_at) IS expires_at),
    created_at TEXT NOT NULL CHECK (strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS created_at),
    PRIMARY KEY (org_id, id)
) STRICT;
