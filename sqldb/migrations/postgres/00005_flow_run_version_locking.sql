-- +goose Up
-- Version locking is opt-in per flow run, chosen when the run is created
-- (Prefect Cloud 1.x's flow setting): only a run with version_locking
-- refuses a state change that names a stale version. Existing runs: off.
ALTER TABLE flow_runs ADD COLUMN version_locking BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE flow_runs DROP COLUMN version_locking;
