package sqldb

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/latchkey/latchkey"
)

// dialect names an engine; it is also the migrations folder name.
type dialect string

const (
	sqlite   dialect = "sqlite"
	postgres dialect = "postgres"
)

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL. Queries in
// this package never contain a literal question mark.
func (d dialect) rebind(q string) string {
	if d != postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// timeLayout is fixed-width so SQLite's text timestamps sort and compare
// chronologically; PostgreSQL parses it into timestamptz.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Time is a time.Time argument and scan target that round-trips through
// both engines (SQLite TEXT, PostgreSQL timestamptz). The zero Time is NULL.
type Time time.Time

// Value implements driver.Valuer.
func (t Time) Value() (driver.Value, error) {
	if time.Time(t).IsZero() {
		return nil, nil
	}
	return time.Time(t).UTC().Format(timeLayout), nil
}

// Scan implements sql.Scanner.
func (t *Time) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = Time{}
	case time.Time:
		*t = Time(v.UTC())
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("scan time: unsupported type %T", v)
	}
	return nil
}

func (t *Time) parse(s string) error {
	tt, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	*t = Time(tt.UTC())
	return nil
}

// Ptr returns the time as a pointer, nil for NULL.
func (t Time) Ptr() *time.Time {
	if time.Time(t).IsZero() {
		return nil
	}
	tt := time.Time(t)
	return &tt
}

// timePtr converts an optional time into an argument (NULL for nil).
func timePtr(t *time.Time) Time {
	if t == nil {
		return Time{}
	}
	return Time(*t)
}

// nullString turns "" into NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// formatError translates engine errors into latchkey errors where the
// caller can act on them; anything else is returned unchanged (internal).
func formatError(err error, conflictMsg string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return latchkey.Errorf(latchkey.ECONFLICT, "%s", conflictMsg)
		}
		return err
	}
	if strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return latchkey.Errorf(latchkey.ECONFLICT, "%s", conflictMsg)
	}
	return err
}
