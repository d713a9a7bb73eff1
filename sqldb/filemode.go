package sqldb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// createPrivateFile makes sure the SQLite database at path is private to
// the server's user, since it holds password hashes and (encrypted) signing
// keys. It creates a missing database as an empty file of mode 0600,
// whatever the umask, before SQLite opens it: SQLite creates the -wal,
// -shm and -journal files with the mode of the database file. It refuses
// an existing database, or one of those files, that group or others may
// access, saying how to fix it.
func createPrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = f.Chmod(0o600)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("open db: create %s: %w", path, err)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("open db: create %s: %w", path, err)
	}
	var bad, desc []string
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if p != path && errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("open db: %w", err)
		} else if !fi.Mode().IsRegular() {
			return fmt.Errorf("open db: %s is not a regular file", p)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			bad = append(bad, p)
			desc = append(desc, fmt.Sprintf("%s (mode %04o)", p, perm))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	verb := "is"
	if len(bad) > 1 {
		verb = "are"
	}
	return fmt.Errorf("open db: %s %s accessible by group or others; the database must be private to the server's user: run chmod 600 %s",
		strings.Join(desc, ", "), verb, strings.Join(bad, " "))
}
