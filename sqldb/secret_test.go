package sqldb_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

const (
	oldSecret = "the-old-system-secret-0123456789abcdef"
	newSecret = "the-new-system-secret-0123456789abcdef"
)

func mustSecrets(tb testing.TB, secrets ...string) *sqldb.SystemSecrets {
	tb.Helper()
	s, err := sqldb.NewSystemSecrets(secrets...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// openWith opens dsn with secrets (nil: the default of the engine) and
// closes it when the test ends.
func openWith(tb testing.TB, dsn string, secrets *sqldb.SystemSecrets) (*sqldb.DB, error) {
	tb.Helper()
	db := sqldb.NewDB(dsn)
	db.Secrets = secrets
	if err := db.Open(context.Background()); err != nil {
		return nil, err
	}
	tb.Cleanup(func() { db.Close() })
	return db, nil
}

func mustOpenWith(tb testing.TB, dsn string, secrets *sqldb.SystemSecrets) *sqldb.DB {
	tb.Helper()
	db, err := openWith(tb, dsn, secrets)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return db
}

// rawPrivateKeys returns the private_key column by key id, as stored.
func rawPrivateKeys(tb testing.TB, db *sqldb.DB) map[string][]byte {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, false)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, private_key FROM signing_keys`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	m := map[string][]byte{}
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			tb.Fatal(err)
		}
		m[id] = b
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return m
}

// mustFindSeed returns the seed FindSigningKeys gives for key id.
func mustFindSeed(tb testing.TB, db *sqldb.DB, id string) []byte {
	tb.Helper()
	keys, err := sqldb.NewSigningKeyService(db).FindSigningKeys(context.Background(), time.Time{})
	if err != nil {
		tb.Fatalf("find signing keys: %v", err)
	}
	for _, k := range keys {
		if k.ID == id {
			return k.PrivateKey
		}
	}
	tb.Fatalf("key %s not found", id)
	return nil
}

func mustCreateKey(tb testing.TB, db *sqldb.DB) *latchkey.SigningKey {
	tb.Helper()
	k := mustNewSigningKey(tb, db)
	if err := sqldb.NewSigningKeyService(db).CreateSigningKey(context.Background(), k); err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustInsertPlaintextKey stores a key as versions before encryption did.
func mustInsertPlaintextKey(tb testing.TB, db *sqldb.DB, id string) []byte {
	tb.Helper()
	ctx := context.Background()
	k := mustNewSigningKey(tb, db)
	tx, err := db.BeginTx(ctx, true)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key, public_key, created_at) VALUES (?, 'EdDSA', ?, ?, ?)`,
		id, k.PrivateKey, k.PublicKey, sqldb.Time(time.Now())); err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return k.PrivateKey
}

func wantMismatch(tb testing.TB, err error) {
	tb.Helper()
	if !errors.Is(err, sqldb.ErrSystemSecretMismatch) ||
		!strings.Contains(err.Error(), "signing keys cannot be decrypted: the system secret does not match") {
		tb.Fatalf("err = %v, want the system secret mismatch", err)
	}
}

func wantPerm(tb testing.TB, path string, want fs.FileMode) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		tb.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// The database, its -wal and -shm files and the secret file made on first
// start are private to the user, whatever the umask.
func TestDB_SQLiteFileModes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	var logs bytes.Buffer
	db := sqldb.NewDB(path)
	db.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	latchkeytest.MustBootstrap(t, db)
	mustCreateKey(t, db)
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".secret"} {
		wantPerm(t, p, 0o600)
	}
	if !strings.Contains(logs.String(), "created a new system secret") || !strings.Contains(logs.String(), path+".secret") {
		t.Errorf("the log does not say the secret file was made:\n%s", logs.String())
	}
	// The file holds one secret, which is not logged.
	b, err := os.ReadFile(path + ".secret")
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			secrets = append(secrets, line)
		}
	}
	if len(secrets) != 1 || len(secrets[0]) < sqldb.MinSystemSecretLen {
		t.Fatalf("secret file holds %d secrets", len(secrets))
	}
	if strings.Contains(logs.String(), secrets[0]) {
		t.Error("the log shows the system secret")
	}
}

func TestDB_SQLiteRefusesSharedFiles(t *testing.T) {
	t.Parallel()
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "latchkey.db")
			if err := os.WriteFile(path, nil, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := openWith(t, path, nil)
			if err == nil {
				t.Fatal("opened a database group or others may read")
			}
			for _, want := range []string{path, fmt.Sprintf("mode %04o", mode), "chmod 600 " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if _, err := os.Stat(path + ".secret"); !errors.Is(err, fs.ErrNotExist) {
				t.Error("a secret file was made for a refused database")
			}
		})
	}
	t.Run("wal", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "latchkey.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path+"-wal", 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := openWith(t, path, nil)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path+"-wal") {
			t.Fatalf("err = %v, want the -wal file named", err)
		}
	})
	t.Run("0700 opens", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "latchkey.db")
		mustOpenWith(t, path, nil).Close()
		if err := os.Chmod(path, 0o700); err != nil {
			t.Fatal(err)
		}
		mustOpenWith(t, path, nil)
	})
}

func TestDB_PostgresNeedsSecret(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "postgres")
	_, err := openWith(t, dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL needs a system secret") {
		t.Fatalf("err = %v", err)
	}
}

// The table holds no seed: only a sealed value, bound to its row.
func TestSigningKeyService_EncryptedAtRest(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		k1, k2 := mustCreateKey(t, db), mustCreateKey(t, db)
		raw := rawPrivateKeys(t, db)
		for _, k := range []*latchkey.SigningKey{k1, k2} {
			b := raw[k.ID]
			if len(b) != 1+4+12+ed25519.SeedSize+16 || b[0] != 1 {
				t.Errorf("key %s: stored %d bytes, want a sealed value", k.ID, len(b))
			}
			if bytes.Contains(b, k.PrivateKey) || bytes.Contains(b, k.PrivateKey[:8]) {
				t.Errorf("key %s: the stored value holds the seed", k.ID)
			}
		}
		if bytes.Equal(raw[k1.ID][5:17], raw[k2.ID][5:17]) {
			t.Error("two keys were sealed with one nonce")
		}
		// A sealed value moved to another key's row does not open.
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ? WHERE id = ?`, raw[k1.ID], k2.ID); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		_, err = sqldb.NewSigningKeyService(db).FindSigningKeys(ctx, time.Time{})
		wantMismatch(t, err)
	})
}

// A copy of an SQLite database without its secret file yields no key, and
// no new secret: opening fails and says what is missing.
func TestDB_SQLiteCopyWithoutSecret(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "latchkey.db")
	db := mustOpenWith(t, src, nil)
	k := mustCreateKey(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(src, dst)
	if _, err := os.Stat(src + "-wal"); err == nil {
		copyFile(src+"-wal", dst+"-wal")
	}
	_, err := openWith(t, dst, nil)
	wantMismatch(t, err)
	if !strings.Contains(err.Error(), dst+".secret") || !strings.Contains(err.Error(), "restore it") {
		t.Errorf("error does not name the missing file: %v", err)
	}
	if _, err := os.Stat(dst + ".secret"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a new secret file was made for a database whose keys it cannot decrypt")
	}
	// With the secret file restored, the key is back.
	copyFile(src+".secret", dst+".secret")
	if got := mustFindSeed(t, mustOpenWith(t, dst, nil), k.ID); !bytes.Equal(got, k.PrivateKey) {
		t.Fatal("restored secret: wrong seed")
	}
}

// A database opened with a secret that did not encrypt its keys fails to
// open; it never makes a new key.
func TestDB_WrongSecret(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := latchkeytest.MustDSN(t, engine)
			db := mustOpenWith(t, dsn, mustSecrets(t, oldSecret))
			mustCreateKey(t, db)
			before := rawPrivateKeys(t, db)
			db.Close()
			_, err := openWith(t, dsn, mustSecrets(t, newSecret))
			wantMismatch(t, err)
			after := rawPrivateKeys(t, mustOpenWith(t, dsn, mustSecrets(t, oldSecret)))
			if len(after) != 1 || !bytes.Equal(before[firstKey(before)], after[firstKey(before)]) {
				t.Fatal("a failed open changed the keys")
			}
		})
	}
}

func firstKey(m map[string][]byte) string {
	for k := range m {
		return k
	}
	return ""
}

// Rotation: opened with [new, old], the keys are re-encrypted under new,
// so that old can then go.
func TestDB_RotateSystemSecret(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := latchkeytest.MustDSN(t, engine)
			db := mustOpenWith(t, dsn, mustSecrets(t, oldSecret))
			k1, k2 := mustCreateKey(t, db), mustCreateKey(t, db)
			before := rawPrivateKeys(t, db)
			db.Close()

			db = mustOpenWith(t, dsn, mustSecrets(t, newSecret, oldSecret))
			after := rawPrivateKeys(t, db)
			for _, k := range []*latchkey.SigningKey{k1, k2} {
				if bytes.Equal(before[k.ID], after[k.ID]) {
					t.Errorf("key %s was not re-encrypted", k.ID)
				}
				if got := mustFindSeed(t, db, k.ID); !bytes.Equal(got, k.PrivateKey) {
					t.Errorf("key %s: wrong seed after rotation", k.ID)
				}
			}
			// New keys are sealed under new too.
			k3 := mustCreateKey(t, db)
			db.Close()

			// Opening again changes nothing.
			db = mustOpenWith(t, dsn, mustSecrets(t, newSecret, oldSecret))
			again := rawPrivateKeys(t, db)
			for id, b := range after {
				if !bytes.Equal(again[id], b) {
					t.Errorf("key %s re-encrypted again", id)
				}
			}
			db.Close()

			// The old secret can go, and no longer opens the database.
			db = mustOpenWith(t, dsn, mustSecrets(t, newSecret))
			for _, k := range []*latchkey.SigningKey{k1, k2, k3} {
				if got := mustFindSeed(t, db, k.ID); !bytes.Equal(got, k.PrivateKey) {
					t.Errorf("key %s: wrong seed with the new secret alone", k.ID)
				}
			}
			db.Close()
			_, err := openWith(t, dsn, mustSecrets(t, oldSecret))
			wantMismatch(t, err)
		})
	}
}

// Keys stored in plaintext by versions before encryption are read as they
// are, and encrypted at the next open, once; replicas starting together
// on PostgreSQL all come up.
func TestDB_EncryptsPlaintextKeys(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := latchkeytest.MustDSN(t, engine)
			secrets := mustSecrets(t, oldSecret)
			db := mustOpenWith(t, dsn, secrets)
			seeds := map[string][]byte{}
			for i := range 3 {
				id := fmt.Sprintf("legacy-%d", i)
				seeds[id] = mustInsertPlaintextKey(t, db, id)
			}
			if got := mustFindSeed(t, db, "legacy-0"); !bytes.Equal(got, seeds["legacy-0"]) {
				t.Fatal("plaintext key not read")
			}
			db.Close()

			replicas := 1
			if engine == "postgres" {
				replicas = 4
			}
			var wg sync.WaitGroup
			errs := make([]error, replicas)
			for i := range errs {
				wg.Go(func() {
					var r *sqldb.DB
					if r, errs[i] = openWith(t, dsn, secrets); errs[i] == nil {
						errs[i] = r.Close()
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			db = mustOpenWith(t, dsn, secrets)
			raw := rawPrivateKeys(t, db)
			for id, seed := range seeds {
				if bytes.Contains(raw[id], seed) || len(raw[id]) == ed25519.SeedSize {
					t.Errorf("key %s still stored in plaintext", id)
				}
				if got := mustFindSeed(t, db, id); !bytes.Equal(got, seed) {
					t.Errorf("key %s: wrong seed after encryption", id)
				}
			}
			db.Close()
			_, err := openWith(t, dsn, mustSecrets(t, newSecret))
			wantMismatch(t, err)
		})
	}
}

func TestReadSystemSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode fs.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# comment\n\n  "+newSecret+"  \n"+oldSecret+"\n", 0o600)
	if _, err := sqldb.ReadSystemSecretFile(good); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ path, want string }{
		"shared":  {write("shared", newSecret+"\n", 0o640), "mode 0640"},
		"short":   {write("short", newSecret+"\nshort-secret\n", 0o600), "line 2: the secret is 12 characters long"},
		"empty":   {write("empty", "# nothing\n", 0o600), "holds no secret"},
		"missing": {filepath.Join(dir, "nope"), "no such file"},
	} {
		_, err := sqldb.ReadSystemSecretFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), newSecret) || strings.Contains(err.Error(), "short-secret")) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
	if _, err := sqldb.NewSystemSecrets(); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := sqldb.NewSystemSecrets(newSecret, "too short"); err == nil || !strings.Contains(err.Error(), "#2") {
		t.Errorf("short secret: err = %v", err)
	}
}

// A secret given explicitly is used on SQLite instead of the file.
func TestDB_SQLiteExplicitSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	db := mustOpenWith(t, path, mustSecrets(t, oldSecret))
	mustCreateKey(t, db)
	db.Close()
	if _, err := os.Stat(path + ".secret"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a secret file was made though a secret was given")
	}
	_, err := openWith(t, path, nil)
	wantMismatch(t, err)
}
