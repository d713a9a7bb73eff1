package sqldb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// With MustExist, Open refuses a database that does not exist yet and
// creates nothing; once the database exists, it opens it.
func TestDB_MustExist(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := latchkeytest.MustDSN(t, engine)

			db := latchkeytest.NewDB(dsn)
			db.MustExist = true
			err := db.Open(ctx)
			if latchkey.ErrorCode(err) != latchkey.ENOTFOUND || !strings.HasPrefix(latchkey.ErrorMessage(err), "No Latchkey database at ") {
				t.Fatalf("open of a new database: err=%v, want ENOTFOUND", err)
			}
			if msg := latchkey.ErrorMessage(err); strings.Contains(msg, "@") && !strings.Contains(msg, "://…@") {
				t.Errorf("message %q shows the DSN's user or password", msg)
			}
			if !latchkeytest.IsPostgres(dsn) {
				dir := filepath.Dir(strings.TrimPrefix(dsn, "sqlite:"))
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Fatalf("left %d files in %s", len(entries), dir)
				}
			}

			// Nothing was migrated: a normal Open creates the database,
			// after which MustExist opens it.
			created := latchkeytest.NewDB(dsn)
			if err := created.Open(ctx); err != nil {
				t.Fatal(err)
			}
			created.Close()
			again := latchkeytest.NewDB(dsn)
			again.MustExist = true
			if err := again.Open(ctx); err != nil {
				t.Fatalf("open of an existing database: %v", err)
			}
			again.Close()
		})
	}
}
