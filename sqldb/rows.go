package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey"
)

// collect scans every row with scan and closes rows. It returns a non-nil
// empty slice when there are no rows, and the first error from scan or from
// iterating, unwrapped.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// findCounted returns the rows of table matching where (joined with AND),
// ordered by orderBy, read with scan, and their count before limit and
// offset. what names the rows in errors ("api keys").
func findCounted[T any](ctx context.Context, tx *Tx, what, columns, table string, where []string, args []any, orderBy string, limit, offset int, scan func(rowScanner, ...any) (T, error)) ([]T, int, error) {
	cond := strings.Join(where, " AND ")
	rows, err := tx.QueryContext(ctx, `SELECT `+columns+`, COUNT(*) OVER ()
		FROM `+table+`
		WHERE `+cond+`
		ORDER BY `+orderBy+
		formatLimitOffset(limit, offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find %s: %w", what, err)
	}
	var n int
	out, err := collect(rows, func(rows *sql.Rows) (T, error) { return scan(rows, &n) })
	if err != nil {
		return nil, 0, fmt.Errorf("find %s: %w", what, err)
	}
	if len(out) == 0 && offset > 0 {
		// The window count is lost when the offset skips every row.
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+cond, args...).Scan(&n); err != nil {
			return nil, 0, fmt.Errorf("count %s: %w", what, err)
		}
	}
	return out, n, nil
}

// findPage counts the rows of table matching where, then runs query (the
// page of them, with the same args) and reads its rows with scan. what
// names the rows in errors ("agents").
func findPage[T any](ctx context.Context, tx *Tx, what, table, where string, args []any, query string, scan func(*sql.Rows) (T, error)) ([]T, int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", what, err)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find %s: %w", what, err)
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, 0, fmt.Errorf("find %s: %w", what, err)
	}
	return out, n, nil
}

// findWithOwner runs query, whose one row is a credential's columns followed
// by userColumns, and reads them with scan and scanUser. It returns the zero
// T, nil and no error when there is no row.
func findWithOwner[T any](ctx context.Context, tx *Tx, scan func(rowScanner, ...any) (T, error), query string, args ...any) (T, *latchkey.User, error) {
	row := tx.QueryRowContext(ctx, query, args...)
	var c T
	u, err := scanUser(scanFunc(func(userDest ...any) (err error) {
		c, err = scan(row, userDest...)
		return err
	}))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
		var zero T
		return zero, nil, err
	}
	return c, u, nil
}

// scanFunc adapts a function to rowScanner, so that scanUser can read the
// user columns that follow another row's columns in one result.
type scanFunc func(dest ...any) error

// Scan calls f.
func (f scanFunc) Scan(dest ...any) error { return f(dest...) }
