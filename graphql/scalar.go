package graphql

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	gql "github.com/99designs/gqlgen/graphql"

	"github.com/latchkey/latchkey"
)

// MarshalUUID writes a uuid scalar. The empty string is written as null,
// for optional ids such as a key's default tenant.
func MarshalUUID(id string) gql.Marshaler {
	if id == "" {
		return gql.Null
	}
	return gql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(id))
	})
}

// UnmarshalUUID reads a uuid scalar: a string in the canonical 8-4-4-4-12
// hexadecimal form, returned lower-cased. Anything else is EINVALID.
func UnmarshalUUID(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", latchkey.Errorf(latchkey.EINVALID, "Invalid uuid: expected a string.")
	}
	id, ok := latchkey.ParseUUID(s)
	if !ok {
		return "", latchkey.Errorf(latchkey.EINVALID, "Invalid uuid: expected 8-4-4-4-12 hexadecimal digits.")
	}
	return id, nil
}

// MarshalInt writes an Int scalar.
func MarshalInt(i int) gql.Marshaler { return gql.MarshalInt(i) }

// UnmarshalInt reads an Int scalar. GraphQL's Int is a signed 32-bit
// integer: anything outside that range is EINVALID, as the validator
// already refuses for literals in the query text.
func UnmarshalInt(v any) (int, error) {
	n, err := gql.UnmarshalInt64(v)
	if errors.Is(err, strconv.ErrRange) || (err == nil && (n < math.MinInt32 || n > math.MaxInt32)) {
		return 0, latchkey.Errorf(latchkey.EINVALID,
			"Invalid Int: %s is outside the 32-bit range %d to %d.", truncate(strings.TrimSpace(gqlString(v)), 32), math.MinInt32, math.MaxInt32)
	} else if err != nil {
		return 0, latchkey.Errorf(latchkey.EINVALID, "Invalid Int: expected an integer.")
	}
	return int(n), nil
}

// gqlString returns the text of an Int input for an error message.
func gqlString(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case interface{ String() string }:
		return v.String()
	}
	n, _ := gql.UnmarshalInt64(v)
	return strconv.FormatInt(n, 10)
}

// timestamptzLayout is how times are written: RFC 3339 in UTC with a
// numeric offset and up to microseconds, as PostgreSQL and Hasura write
// timestamptz, e.g. 2030-01-01T00:00:00+00:00.
const timestamptzLayout = "2006-01-02T15:04:05.999999-07:00"

// timestamptzInputLayouts are the accepted input forms: RFC 3339 and the
// ISO 8601 variants Python's isoformat and PostgreSQL produce. Every one
// carries an offset.
var timestamptzInputLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07",
}

// MarshalTimestamptz writes a timestamptz scalar in UTC.
func MarshalTimestamptz(t time.Time) gql.Marshaler {
	return gql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(timestamptzLayout)))
	})
}

// UnmarshalTimestamptz reads a timestamptz scalar: RFC 3339 or ISO 8601
// text with a UTC offset. A time without an offset is EINVALID.
func UnmarshalTimestamptz(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, latchkey.Errorf(latchkey.EINVALID, "Invalid timestamptz: expected a string.")
	}
	s = strings.TrimSpace(s)
	for _, layout := range timestamptzInputLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, latchkey.Errorf(latchkey.EINVALID,
		"Invalid timestamptz %q: use RFC 3339 with an offset, e.g. 2030-01-01T00:00:00+00:00.", truncate(s, 64))
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
