package sqldb

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.SigningKeyService = (*SigningKeyService)(nil)

// SigningKeyService stores the Ed25519 keys that sign access tokens. It
// needs no caller: only the server and `latchkey admin` use it. The private
// part of a key is stored only encrypted under the DB's system secret (see
// DB.Secrets), bound to the key's id.
type SigningKeyService struct {
	db *DB
}

// NewSigningKeyService returns a SigningKeyService on db.
func NewSigningKeyService(db *DB) *SigningKeyService {
	return &SigningKeyService{db: db}
}

// FindSigningKeys returns the keys not retired before since (never retired,
// or retired at or after since), newest first.
func (s *SigningKeyService) FindSigningKeys(ctx context.Context, since time.Time) ([]*latchkey.SigningKey, error) {
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, algorithm, private_key, public_key, created_at, retired_at FROM signing_keys
		WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC, id DESC`, Time(since))
	if err != nil {
		return nil, fmt.Errorf("find signing keys: %w", err)
	}
	defer rows.Close()
	keys := []*latchkey.SigningKey{}
	for rows.Next() {
		var k latchkey.SigningKey
		var createdAt, retiredAt Time
		var stored []byte
		if err := rows.Scan(&k.ID, &k.Algorithm, &stored, &k.PublicKey, &createdAt, &retiredAt); err != nil {
			return nil, fmt.Errorf("scan signing key: %w", err)
		}
		if k.PrivateKey, _, err = s.db.unsealSigningKey(k.ID, stored); err != nil {
			return nil, fmt.Errorf("find signing keys: key %s: %w", k.ID, err)
		}
		k.CreatedAt, k.RetiredAt = time.Time(createdAt), retiredAt.Ptr()
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find signing keys: %w", err)
	}
	return keys, nil
}

// CreateSigningKey stores a new key, which becomes the newest and so the
// signing key. An empty ID gets a new UUID, an empty Algorithm "EdDSA" and a
// zero CreatedAt the transaction's time. Returns EINVALID unless the key is
// an Ed25519 seed with its public key, and ECONFLICT for a taken id.
func (s *SigningKeyService) CreateSigningKey(ctx context.Context, key *latchkey.SigningKey) error {
	if key.Algorithm == "" {
		key.Algorithm = "EdDSA"
	}
	if key.Algorithm != "EdDSA" {
		return latchkey.Errorf(latchkey.EINVALID, "Unsupported signing algorithm %q.", key.Algorithm)
	}
	if len(key.PrivateKey) != ed25519.SeedSize || len(key.PublicKey) != ed25519.PublicKeySize {
		return latchkey.Errorf(latchkey.EINVALID, "A signing key needs a %d-byte Ed25519 seed and its %d-byte public key.", ed25519.SeedSize, ed25519.PublicKeySize)
	}
	if pub := ed25519.NewKeyFromSeed(key.PrivateKey).Public().(ed25519.PublicKey); !pub.Equal(ed25519.PublicKey(key.PublicKey)) {
		return latchkey.Errorf(latchkey.EINVALID, "The public key does not match the private key.")
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	id := key.ID
	if id == "" {
		if id, err = tx.db.newID(); err != nil {
			return err
		}
	}
	createdAt := key.CreatedAt
	if createdAt.IsZero() {
		createdAt = tx.Now()
	}
	sealed, err := s.db.sealSigningKey(id, key.PrivateKey)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key, public_key, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`,
		id, key.Algorithm, sealed, key.PublicKey, Time(createdAt), timePtr(key.RetiredAt)); err != nil {
		return fmt.Errorf("create signing key: %w", formatError(err, "A signing key with that id exists."))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create signing key: commit: %w", err)
	}
	key.ID, key.CreatedAt = id, createdAt.UTC().Truncate(time.Microsecond)
	return nil
}

// RetireSigningKey stops key id signing as of at (zero: now); it still
// verifies. A key already retired keeps its earlier time. Returns ENOTFOUND for an unknown
// id.
func (s *SigningKeyService) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if at.IsZero() {
		at = tx.Now()
	}
	var retiredAt Time
	if err := tx.QueryRowContext(ctx, `SELECT retired_at FROM signing_keys WHERE id = ?`, id).Scan(&retiredAt); errNoRows(err) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "Signing key not found.")
	} else if err != nil {
		return fmt.Errorf("retire signing key: %w", err)
	}
	if retiredAt.Ptr() != nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE id = ?`, Time(at), id); err != nil {
		return fmt.Errorf("retire signing key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retire signing key: commit: %w", err)
	}
	return nil
}

// signingKeyAAD binds a sealed private key to its row: a sealed value
// copied to another key's row does not open.
func signingKeyAAD(id string) []byte {
	return []byte("latchkey signing_keys.private_key\x00" + id)
}

// sealSigningKey encrypts the seed of key id for storage.
func (db *DB) sealSigningKey(id string, seed []byte) ([]byte, error) {
	if db.Secrets == nil {
		return nil, errors.New("no system secret: open the database first")
	}
	return db.Secrets.seal(db.Rand, seed, signingKeyAAD(id))
}

// unsealSigningKey returns the seed of key id from its stored form, and
// whether that form is current: sealed under the first system secret. A
// stored value of exactly an Ed25519 seed's length is a seed stored in
// plaintext, before encryption (a sealed one is longer): it is returned,
// not current, and encrypted at the next Open. It returns an error
// wrapping ErrSystemSecretMismatch if no system secret decrypts it.
func (db *DB) unsealSigningKey(id string, stored []byte) (seed []byte, current bool, err error) {
	if len(stored) == ed25519.SeedSize {
		return stored, false, nil
	}
	if db.Secrets == nil {
		return nil, false, errors.New("no system secret: open the database first")
	}
	seed, current, err = db.Secrets.open(stored, signingKeyAAD(id))
	if errors.Is(err, errNotSealed) {
		return nil, false, fmt.Errorf("stored private key is neither sealed nor an Ed25519 seed")
	}
	return seed, current, err
}

// openSecrets runs at Open, after the migrations. On SQLite without
// Secrets it reads the secret file beside the database, or makes a new
// secret, written to a new file of mode 0600 only once it is known to fit
// the database (no stored key it cannot decrypt). It then checks that the
// secrets decrypt every stored signing key, and encrypts under the first
// secret the keys stored in plaintext or under another secret. Replicas may
// run it at the same time: the rewrite locks the rows it reads (PostgreSQL)
// or the database (SQLite), and rewrites only what is still stale.
func (db *DB) openSecrets(ctx context.Context, mayCreate bool) error {
	var created string // the new secret's file, written once checked
	var secret string
	if db.Secrets == nil {
		if db.dialect != sqlite {
			return errors.New("open db: no system secret")
		}
		path := db.path + ".secret"
		s, err := ReadSystemSecretFile(path)
		switch {
		case err == nil:
			db.Secrets = s
		case errors.Is(err, fs.ErrNotExist) && mayCreate:
			if secret, err = NewSystemSecret(db.Rand); err != nil {
				return fmt.Errorf("open db: %w", err)
			}
			if db.Secrets, err = NewSystemSecrets(secret); err != nil {
				return fmt.Errorf("open db: %w", err)
			}
			created = path
		default:
			return fmt.Errorf("open db: %w", err)
		}
	}
	stale, err := db.resealSigningKeys(ctx, false)
	if err != nil {
		if created != "" {
			db.Secrets = nil
			if errors.Is(err, ErrSystemSecretMismatch) {
				return fmt.Errorf("%w; the system secret file %s, which the signing keys were encrypted with, is missing: "+
					"restore it from its backup (a copy of the database alone holds no usable signing key)", err, created)
			}
		}
		return err
	}
	if created != "" {
		if err := createSystemSecretFile(created, secret, db.path); errors.Is(err, fs.ErrExist) {
			// Another process made one meanwhile: use it.
			db.Secrets = nil
			return db.openSecrets(ctx, false)
		} else if err != nil {
			db.Secrets = nil
			return fmt.Errorf("open db: create system secret file: %w", err)
		}
		db.Logger.Warn("created a new system secret, which encrypts the signing keys in the database; back the file up apart from the database: without it the keys cannot be read",
			"path", created)
	}
	if stale == 0 {
		return nil
	}
	n, err := db.resealSigningKeys(ctx, true)
	if err != nil {
		return err
	}
	if n > 0 {
		db.Logger.Info("encrypted signing keys under the first system secret", "keys", n)
	}
	return nil
}

// resealSigningKeys decrypts every stored signing key and counts those not
// sealed under the first system secret; with write, it seals them so, in
// one transaction that locks the rows. It fails, changing nothing, if a key
// cannot be decrypted.
func (db *DB) resealSigningKeys(ctx context.Context, write bool) (int, error) {
	tx, err := db.BeginTx(ctx, write)
	if err != nil {
		return 0, fmt.Errorf("open db: %w", err)
	}
	defer tx.Rollback()
	q := `SELECT id, private_key FROM signing_keys ORDER BY id`
	if write && db.dialect == postgres {
		q += ` FOR UPDATE`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("open db: read signing keys: %w", err)
	}
	type staleKey struct {
		id   string
		seed []byte
	}
	var stale []staleKey
	var total, bad int
	for rows.Next() {
		var id string
		var stored []byte
		if err := rows.Scan(&id, &stored); err != nil {
			rows.Close()
			return 0, fmt.Errorf("open db: read signing keys: %w", err)
		}
		total++
		seed, current, err := db.unsealSigningKey(id, stored)
		switch {
		case errors.Is(err, ErrSystemSecretMismatch):
			bad++
		case err != nil:
			rows.Close()
			return 0, fmt.Errorf("open db: signing key %s: %w", id, err)
		case !current:
			stale = append(stale, staleKey{id, seed})
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("open db: read signing keys: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("open db: read signing keys: %w", err)
	}
	if bad > 0 {
		return 0, fmt.Errorf("open db: %w (%d of %d signing keys): give the secret they were encrypted with "+
			"(when rotating, the new secret first and the old one after it)", ErrSystemSecretMismatch, bad, total)
	}
	if !write || len(stale) == 0 {
		return len(stale), nil
	}
	for _, k := range stale {
		sealed, err := db.sealSigningKey(k.id, k.seed)
		if err != nil {
			return 0, fmt.Errorf("open db: signing key %s: %w", k.id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ? WHERE id = ?`, sealed, k.id); err != nil {
			return 0, fmt.Errorf("open db: encrypt signing key %s: %w", k.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("open db: encrypt signing keys: commit: %w", err)
	}
	return len(stale), nil
}
