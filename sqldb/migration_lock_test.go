package sqldb_test

import (
	"testing"

	"github.com/pressly/goose/v3/lock"

	"github.com/latchkey/latchkey/sqldb"
)

// The public schema migrates under goose's default lock, as every earlier
// version did (a rolling upgrade's replicas take one lock); other schemas
// each have their own, so they do not wait for one another.
func TestMigrationLockID(t *testing.T) {
	t.Parallel()
	if got := sqldb.MigrationLockID("public"); got != lock.DefaultLockID {
		t.Errorf("public: lock id %d, want goose's default %d", got, lock.DefaultLockID)
	}
	a, b := sqldb.MigrationLockID("tenant_a"), sqldb.MigrationLockID("tenant_b")
	if a == b || a == lock.DefaultLockID || b == lock.DefaultLockID {
		t.Errorf("schemas share a lock: tenant_a %d, tenant_b %d, default %d", a, b, lock.DefaultLockID)
	}
	if a != sqldb.MigrationLockID("tenant_a") {
		t.Error("a schema's lock id changes between calls")
	}
}
