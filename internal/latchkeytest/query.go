package latchkeytest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/latchkey/latchkey/argon2id"
	"github.com/latchkey/latchkey/sqldb"
)

// FastPasswordParams returns cheap Argon2id parameters for tests.
func FastPasswordParams() argon2id.Params {
	return argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// MustQueryAll runs query (with ? placeholders) and returns every row as
// column name → value: []byte values as their raw bytes, NULL as "", others
// formatted with fmt.Sprint.
func MustQueryAll(tb testing.TB, db *sqldb.DB, query string, args ...any) []map[string]string {
	tb.Helper()
	tx, err := db.BeginTx(context.Background(), false)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(context.Background(), query, args...)
	if err != nil {
		tb.Fatalf("query %q: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				m[c] = string(bytes.Clone(v))
			case nil:
				m[c] = ""
			default:
				m[c] = fmt.Sprint(v)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// MustCount runs a SELECT COUNT(*) query and returns the count.
func MustCount(tb testing.TB, db *sqldb.DB, query string, args ...any) int {
	tb.Helper()
	tx, err := db.BeginTx(context.Background(), false)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("query %q: %v", query, err)
	}
	return n
}

// MustExec runs a statement in a write transaction of its own, for
// fixtures the stores cannot make (rows an earlier version wrote).
func MustExec(tb testing.TB, db *sqldb.DB, query string, args ...any) {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, true)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		tb.Fatalf("exec %q: %v", query, err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}
