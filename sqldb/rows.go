package sqldb

import (
	"context"
	"database/sql"
	"errors"

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
