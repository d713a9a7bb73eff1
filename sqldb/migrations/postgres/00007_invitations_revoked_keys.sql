-- +goose Up
-- A pending invitation of an existing user to a tenant: the user becomes a
-- member only when they accept it after signing in. invitee is what the
-- inviting admin typed (an email or a user id), the only thing about the
-- user that the tenant's admins are shown. One pending invitation per user
-- and tenant; accepting or declining deletes the row.
CREATE TABLE invitations (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invitee            TEXT NOT NULL,
    role               TEXT NOT NULL,
    invited_by_user_id TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX invitations_user_id ON invitations (user_id);

-- Revoked API keys, kept for the record: revoking still deletes the
-- api_keys row (so authentication never sees a revoked key) and writes
-- this row in the same transaction. It holds no hash of the key. The owner
-- may be gone (a deleted service account), so its kind and, for service
-- accounts, its name are kept here; user ids have no foreign key.
CREATE TABLE revoked_api_keys (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    owner_kind         TEXT NOT NULL,
    owner_name         TEXT NOT NULL DEFAULT '',
    name               TEXT NOT NULL,
    identifier         TEXT,
    default_tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_by_user_id TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    revoked_at         TIMESTAMPTZ NOT NULL,
    revoked_by_user_id TEXT
);
CREATE INDEX revoked_api_keys_user_id ON revoked_api_keys (user_id, revoked_at);
CREATE INDEX revoked_api_keys_tenant ON revoked_api_keys (default_tenant_id, revoked_at);

-- Failed authentications, counted per kind, identifier, client address and
-- minute by each replica and added up here (one row, not one per attempt).
-- identifier is a refused credential's latchkey.SecretIdentifier (never
-- the credential) or the email of a failed sign-in.
CREATE TABLE auth_failures (
    kind        TEXT NOT NULL,
    identifier  TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    minute      TIMESTAMPTZ NOT NULL,
    count       INTEGER NOT NULL,
    first_at    TIMESTAMPTZ NOT NULL,
    last_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, identifier, client_addr, minute)
);
CREATE INDEX auth_failures_minute ON auth_failures (minute);

-- +goose Down
DROP TABLE auth_failures;
DROP TABLE revoked_api_keys;
DROP TABLE invitations;
