-- +goose Up
-- The audit log: who did what to which key, token, service account,
-- membership or tenant, when and from where. Each row is written in the same
-- transaction as the change it records. actor_user_id has no foreign key:
-- the log outlives the users it names. details is a small JSON object of
-- strings and never holds a secret. seq orders events of one transaction.
CREATE TABLE audit_events (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_user_id       TEXT,
    actor_kind          TEXT NOT NULL DEFAULT '',
    actor_credential_id TEXT,
    action              TEXT NOT NULL,
    target_type         TEXT NOT NULL,
    target_id           TEXT NOT NULL,
    details             TEXT NOT NULL DEFAULT '{}',
    client_addr         TEXT NOT NULL DEFAULT '',
    user_agent          TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL
);
CREATE INDEX audit_events_tenant_created ON audit_events (tenant_id, created_at, seq);

-- +goose Down
DROP TABLE audit_events;
