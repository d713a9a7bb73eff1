package sqldb

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.SigningKeyService = (*SigningKeyService)(nil)

// SigningKeyService stores the Ed25519 keys that sign access tokens. It
// needs no caller: only the server and `latchkey admin` use it.
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
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &createdAt, &retiredAt); err != nil {
			return nil, fmt.Errorf("scan signing key: %w", err)
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key, public_key, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`,
		id, key.Algorithm, key.PrivateKey, key.PublicKey, Time(createdAt), timePtr(key.RetiredAt)); err != nil {
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
