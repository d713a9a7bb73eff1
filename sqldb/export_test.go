package sqldb

import (
	"time"

	"github.com/latchkey/latchkey"
)

// This file exposes internals of the cache and the event listener to the
// external tests (package sqldb_test). It is compiled only into tests.

// Generation returns the generation a database read would pass to the
// stores after it.
func (c *AuthCache) Generation() uint64 { return c.begin() }

// PutRole stores a role entry as a lookup that started at gen would.
func (c *AuthCache) PutRole(gen uint64, userID, tenantID string, role latchkey.Role, now time.Time) {
	c.putRole(gen, userID, tenantID, role, now)
}

// Role returns a cached role, or "".
func (c *AuthCache) Role(userID, tenantID string, now time.Time) latchkey.Role {
	return c.roleOf(userID, tenantID, now)
}

// PutAPIKey stores an API key entry under the hash of secret as a lookup
// that started at gen would.
func (c *AuthCache) PutAPIKey(gen uint64, secret string, key *latchkey.APIKey, owner *latchkey.User, now time.Time) {
	c.putCredential(gen, &cacheEntry{kind: kindAPIKey, hash: secretHash(secret), userID: owner.ID, user: owner, apiKey: key}, now)
}

// APIKey returns the cached key of secret and its owner, or nils.
func (c *AuthCache) APIKey(secret string, now time.Time) (*latchkey.APIKey, *latchkey.User) {
	e := c.byHashKind(kindAPIKey, secretHash(secret), now)
	if e == nil {
		return nil, nil
	}
	return e.apiKey, e.user
}

// Handle delivers an event to the cache as its subscription would.
func (c *AuthCache) Handle(ev latchkey.Event) { c.handle(ev) }

// BackendPID returns the PostgreSQL backend pid of the listening
// connection, 0 when not listening.
func (s *EventService) BackendPID() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// NewID returns an id as the stores make them.
func (db *DB) NewID() (string, error) { return db.newID() }

// WriterAutoCheckpoint is the write connection's wal_autocheckpoint, in pages.
const WriterAutoCheckpoint = writerAutoCheckpoint

// CheckpointRan returns a channel that is closed when the next background
// checkpoint (or the one running) is done.
func (db *DB) CheckpointRan() <-chan struct{} {
	c := db.ckpt
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ran == nil {
		c.ran = make(chan struct{})
	}
	return c.ran
}

// MigrationLockID returns the advisory lock id replicas take to migrate
// schema.
func MigrationLockID(schema string) int64 { return migrationLockID(notifyChannel(schema)) }
