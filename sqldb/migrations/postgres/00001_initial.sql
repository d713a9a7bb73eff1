-- +goose Up
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Humans (kind USER) and service accounts (kind SERVICE_ACCOUNT, tenant_id set).
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('USER', 'SERVICE_ACCOUNT')),
    email              TEXT UNIQUE,
    name               TEXT NOT NULL DEFAULT '',
    password_hash      TEXT,
    tenant_id          TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    default_tenant_id  TEXT REFERENCES tenants (id) ON DELETE SET NULL,
    created_by_user_id TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'USER' AND tenant_id IS NULL) OR (kind = 'SERVICE_ACCOUNT' AND tenant_id IS NOT NULL AND email IS NULL))
);
CREATE INDEX users_tenant_id ON users (tenant_id);

CREATE TABLE memberships (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('TENANT_ADMIN', 'USER', 'READ_ONLY_USER')),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id);

-- Only the SHA-256 of a key is stored.
CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    key_hash           BYTEA NOT NULL UNIQUE,
    created_by_user_id TEXT,
    default_tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ,
    last_used_at       TIMESTAMPTZ
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
CREATE INDEX api_keys_default_tenant_id ON api_keys (default_tenant_id);

-- Deprecated scoped tokens; only the SHA-256 is stored.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('USER', 'TENANT', 'RUNNER')),
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant_id ON api_tokens (tenant_id);

-- Single-use refresh tokens. family_id chains rotations so that reuse of a
-- spent token can revoke the whole chain. Deleting the source key or token
-- deletes them.
CREATE TABLE refresh_tokens (
    id              TEXT PRIMARY KEY,
    token_hash      BYTEA NOT NULL UNIQUE,
    family_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    api_key_id      TEXT REFERENCES api_keys (id) ON DELETE CASCADE,
    api_token_id    TEXT REFERENCES api_tokens (id) ON DELETE CASCADE,
    access_token_id TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

-- Web UI sessions; only the SHA-256 of the cookie is stored.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    token_hash   BYTEA NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- One-time set-password links.
CREATE TABLE password_resets (
    id                 TEXT PRIMARY KEY,
    token_hash         BYTEA NOT NULL UNIQUE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by_user_id TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    used_at            TIMESTAMPTZ
);

-- Ed25519 keys that sign access tokens.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE password_resets;
DROP TABLE sessions;
DROP TABLE refresh_tokens;
DROP TABLE api_tokens;
DROP TABLE api_keys;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE tenants;
