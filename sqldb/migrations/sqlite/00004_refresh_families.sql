-- +goose Up
-- Refresh-token families. A refresh token is signed and self-describing
-- (family id, generation, source credential, tenant, expiry), so minting
-- one writes nothing; a family gets a row only when one of its tokens is
-- used. generation is that of the family's newest token: each refresh
-- advances it atomically, and a token of an older generation is a reuse,
-- which revokes the family (revoked_at). Access tokens carry their
-- family's id; one whose family was revoked no longer authenticates. A row
-- is kept until the family's newest token has expired.
CREATE TABLE refresh_families (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    api_key_id   TEXT,
    api_token_id TEXT,
    generation   INTEGER NOT NULL,
    revoked_at   TEXT,
    expires_at   TEXT NOT NULL
);
CREATE INDEX refresh_families_api_key_id ON refresh_families (api_key_id);
CREATE INDEX refresh_families_api_token_id ON refresh_families (api_token_id);

-- +goose Down
DROP TABLE refresh_families;
