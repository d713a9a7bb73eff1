-- +goose Up
-- Version locking is opt-in per flow run, chosen when the run is created
-- (Prefect Cloud 1.x's flow setting): only a run with version_locking = 1
-- refuses a state change that names a stale version. Existing runs: off.
ALTER TABLE flow_runs ADD COLUMN version_locking INTEGER NOT NULL DEFAULT 0 CHECK (version_locking IN (0, 1));

-- +goose Down
ALTER TABLE flow_runs DROP COLUMN version_locking;
