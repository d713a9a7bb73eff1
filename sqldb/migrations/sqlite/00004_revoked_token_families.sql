-- +goose Up
-- Refresh-token families revoked because one of their refresh tokens was
-- used twice. Access tokens carry their family's id (the fid claim); one
-- whose family is listed here no longer authenticates. A row is kept until
-- every access token minted in the family has expired.
CREATE TABLE revoked_token_families (
    family_id    TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    api_key_id   TEXT,
    api_token_id TEXT,
    revoked_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX revoked_token_families_api_key_id ON revoked_token_families (api_key_id);
CREATE INDEX revoked_token_families_api_token_id ON revoked_token_families (api_token_id);

-- +goose Down
DROP TABLE revoked_token_families;
