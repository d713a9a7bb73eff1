package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/sqldb"
)

// Environment variables that give the system secrets (see systemSecrets).
const (
	envSystemSecretFile = "LATCHKEY_SYSTEM_SECRET_FILE"
	envSystemSecrets    = "LATCHKEY_SYSTEM_SECRETS"
)

// systemSecretFileUsage and systemSecretsHelp describe the system secret in
// --help.
const (
	systemSecretFileUsage = "system secrets that encrypt the signing keys in the database: one a line, the first encrypts, all decrypt (`file`, mode 0600; env " + envSystemSecretFile + ")"
	systemSecretsHelp     = "The system secret encrypts the signing keys in the database. It is taken from\n" +
		"--system-secret-file (or " + envSystemSecretFile + "), else from " + envSystemSecrets + "\n" +
		"(comma-separated, the first encrypts), else, with SQLite only, from the file\n" +
		"DB.secret beside the database, which the first start creates. PostgreSQL\n" +
		"needs one of the first two, the same on every replica. Each secret is at least\n" +
		"32 characters: openssl rand -base64 32 makes one.\n"
)

// splitSystemSecrets splits the value of LATCHKEY_SYSTEM_SECRETS.
func splitSystemSecrets(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// systemSecrets returns the system secrets for the database dsn: from
// file if set, else from list (LATCHKEY_SYSTEM_SECRETS), else nil, which
// on SQLite means the file beside the database and on PostgreSQL is
// refused. source says where they came from, for the log (never the
// secrets themselves).
func systemSecrets(dsn, file string, list []string) (s *sqldb.SystemSecrets, source string, err error) {
	switch {
	case file != "":
		s, err = sqldb.ReadSystemSecretFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("--system-secret-file: %w", err)
		}
		return s, "file " + file, nil
	case len(list) > 0:
		s, err = sqldb.NewSystemSecrets(list...)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", envSystemSecrets, err)
		}
		return s, envSystemSecrets, nil
	case dbKind(dsn) == "postgres":
		return nil, "", errors.New("PostgreSQL needs a system secret to encrypt the signing keys, the same on every replica: " +
			"give --system-secret-file FILE (one secret a line, mode 0600) or " + envSystemSecrets + " (generate a secret with: openssl rand -base64 32)")
	}
	return nil, "file " + sqlitePath(dsn) + ".secret", nil
}

// secretMismatchHint adds to an error from opening the database where the
// system secret came from, when it does not fit.
func secretMismatchHint(err error, source string) error {
	if errors.Is(err, sqldb.ErrSystemSecretMismatch) {
		return fmt.Errorf("%w (the system secret came from %s)", err, source)
	}
	return err
}

// sqlitePath is the file of an SQLite DSN.
func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}
