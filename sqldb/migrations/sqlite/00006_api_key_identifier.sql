-- +goose Up
-- The non-secret identifier of a key (latchkey.SecretIdentifier: its prefix
-- and last four characters, "lku_…x9Qz"), stored when the key is created so
-- that people can tell their keys apart. Never more of the key than that.
-- Keys created before this migration have none (NULL): their text is not
-- stored anywhere, so it cannot be derived.
ALTER TABLE api_keys ADD COLUMN identifier TEXT;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN identifier;
