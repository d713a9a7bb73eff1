package sqldb

import (
	"context"
	"fmt"
)

// DeleteExpiredCredentials deletes refresh tokens, UI sessions and password
// reset links that have expired, and returns how many rows went. Such rows
// can no longer authenticate anything, so no event is needed. Spent refresh
// tokens are kept until they expire: reuse detection needs them. Any
// replica may run it at any time.
func (db *DB) DeleteExpiredCredentials(ctx context.Context) (int64, error) {
	tx, err := db.BeginTx(ctx, true)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var total int64
	for _, table := range []string{"refresh_tokens", "sessions", "password_resets", "refresh_families"} {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE expires_at <= ?`, Time(tx.Now()))
		if err != nil {
			return 0, fmt.Errorf("delete expired %s: %w", table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("delete expired %s: %w", table, err)
		}
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete expired credentials: %w", err)
	}
	return total, nil
}
