package sqldb

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// Schema is a PostgreSQL schema for throwaway data (tests, `latchkey
// bench`), made by CreateSchema.
type Schema struct {
	// Name is the schema's name.
	Name string
	// DSN is the base URL with its search_path set to the schema: the DSN
	// of a DB in it.
	DSN  string
	base string
}

// CreateSchema creates a schema named prefix (lowercase letters, digits,
// _) followed by 12 random hexadecimal digits read from r, in the database
// of base, a postgres:// URL.
func CreateSchema(ctx context.Context, base, prefix string, r io.Reader) (*Schema, error) {
	if !validSchemaPrefix(prefix) {
		return nil, fmt.Errorf("create schema: invalid prefix %q", prefix)
	}
	var b [6]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("create schema: parse postgres dsn: %w", errors.New(redactDSN(err.Error())))
	}
	s := &Schema{Name: prefix + hex.EncodeToString(b[:]), base: base}
	q := u.Query()
	q.Set("search_path", s.Name)
	u.RawQuery = q.Encode()
	s.DSN = u.String()
	if err := s.exec(ctx, "CREATE SCHEMA "+s.Name); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return s, nil
}

// Drop drops the schema and everything in it.
func (s *Schema) Drop(ctx context.Context) error {
	if err := s.exec(ctx, "DROP SCHEMA "+s.Name+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", s.Name, err)
	}
	return nil
}

// exec runs stmt on a connection of its own to the database of s.base.
func (s *Schema) exec(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// validSchemaPrefix reports whether p is a lowercase identifier that needs
// no quoting: letters, digits and _, not starting with a digit.
func validSchemaPrefix(p string) bool {
	for i, c := range []byte(p) {
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return p != ""
}
