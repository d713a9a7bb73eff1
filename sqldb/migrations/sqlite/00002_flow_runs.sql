-- +goose Up
-- Agents, as register_agent records them. An agent that registers again with
-- the same name, type and labels (a JSON array, sorted) reuses its row.
CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    labels       TEXT NOT NULL,
    user_id      TEXT,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    UNIQUE (tenant_id, name, type, labels)
);

-- Flow runs. command and labels are JSON arrays of strings. A run whose
-- heartbeats stop while Submitted or Running is marked Failed by the server,
-- with lost_contact_at set.
CREATE TABLE flow_runs (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    command              TEXT NOT NULL,
    labels               TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('Scheduled', 'Submitted', 'Running', 'Success', 'Failed', 'Cancelled')),
    state_message        TEXT NOT NULL DEFAULT '',
    version              INTEGER NOT NULL,
    scheduled_start_time TEXT NOT NULL,
    start_time           TEXT,
    end_time             TEXT,
    heartbeat_at         TEXT,
    lost_contact_at      TEXT,
    agent_id             TEXT REFERENCES agents (id) ON DELETE SET NULL,
    created_by_user_id   TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX flow_runs_queue ON flow_runs (tenant_id, state, scheduled_start_time);
CREATE INDEX flow_runs_heartbeat ON flow_runs (state, heartbeat_at);

-- Log lines of flow runs; id orders lines written at the same time.
CREATE TABLE flow_run_logs (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    flow_run_id TEXT NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    logged_at   TEXT NOT NULL,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX flow_run_logs_flow_run_id ON flow_run_logs (flow_run_id, logged_at, id);

-- +goose Down
DROP TABLE flow_run_logs;
DROP TABLE flow_runs;
DROP TABLE agents;
