package sqldb

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
)

// Defaults of AuthCache.
const (
	DefaultAuthCacheTTL  = 30 * time.Second
	DefaultAuthCacheSize = 100_000
)

// AuthCache holds what AuthService.Authenticate verified, so that a
// credential seen recently is checked without a database round trip: API
// keys, legacy tokens and sessions by the SHA-256 of their secret (with
// their owner), the keys and tokens access tokens are minted from by id,
// and membership roles by user and tenant. It never holds a negative
// answer (unknown credential, not a member), nor anything that depends on
// the time: expiry is checked on every hit against the cached expires_at.
//
// Revocation stays immediate because the cache subscribes to the events
// the store publishes (see DB.Events): every event names a user, and drops
// everything cached for that user before the revoking method returns (on
// other replicas, when its notification arrives). A generation counter,
// bumped by every invalidation, stops a lookup that read the database
// before an invalidation from storing what it read after it. Entries also
// expire TTL after they were stored, as a safety net, and the cache holds
// at most MaxEntries, dropping the oldest first.
//
// Set TTL and MaxEntries before use.
type AuthCache struct {
	// TTL is how long an entry is served; zero means DefaultAuthCacheTTL.
	TTL time.Duration

	// MaxEntries bounds the number of entries; zero means
	// DefaultAuthCacheSize.
	MaxEntries int

	unsubscribe func()

	// gen changes only under mu (write-locked), but is read without it.
	gen atomic.Uint64

	mu       sync.RWMutex
	disabled bool // events may be missed: store nothing
	byHash   map[[sha256.Size]byte]*cacheEntry
	byID     map[idKey]*cacheEntry
	roles    map[roleKey]*cacheEntry
	users    map[string]*cacheEntry // the newest entry of each user; each links to the next
	oldest   *cacheEntry            // entries in the order stored, which is the order they expire
	newest   *cacheEntry
	n        int

	hits, misses, invalidations atomic.Uint64
}

// NewAuthCache returns an empty cache subscribed to events, which must be
// the DB's Events. Close unsubscribes it.
func NewAuthCache(events latchkey.EventService) *AuthCache {
	c := &AuthCache{}
	c.reset(false)
	c.unsubscribe = events.Subscribe(c.handle)
	return c
}

// Close unsubscribes the cache from its events and empties it. It stores
// nothing afterwards.
func (c *AuthCache) Close() {
	if c.unsubscribe != nil {
		c.unsubscribe()
	}
	c.reset(true)
}

// AuthCacheStats counts the cache's work.
type AuthCacheStats struct {
	Hits, Misses  uint64 // lookups answered and not answered
	Invalidations uint64 // events handled
	Entries       int
	Disabled      bool // not caching: events may be missed
}

// Stats returns the cache's counters.
func (c *AuthCache) Stats() AuthCacheStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return AuthCacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Invalidations: c.invalidations.Load(),
		Entries: c.n, Disabled: c.disabled,
	}
}

// Len returns the number of entries.
func (c *AuthCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.n
}

// cacheKind tells what an entry holds.
type cacheKind uint8

const (
	kindAPIKey     cacheKind = iota + 1 // by secret hash: apiKey, user
	kindAPIToken                        // by secret hash: apiToken, user
	kindSession                         // by secret hash: session, user
	kindAPIKeyID                        // by id: apiKey, user
	kindAPITokenID                      // by id: apiToken, user
	kindRole                            // by user and tenant: role
)

type idKey struct {
	kind cacheKind
	id   string
}

type roleKey struct{ userID, tenantID string }

// cacheEntry is one cached answer. Everything but the links and lastUsed
// is set before it is stored and never changed: readers use it without a
// lock.
type cacheEntry struct {
	kind    cacheKind
	hash    [sha256.Size]byte // kindAPIKey, kindAPIToken, kindSession
	id      string            // kindAPIKeyID, kindAPITokenID
	roleKey roleKey           // kindRole
	userID  string            // whose credential: invalidated with this user
	expires time.Time

	user     *latchkey.User
	apiKey   *latchkey.APIKey
	apiToken *latchkey.APIToken
	session  *sessionRow
	role     latchkey.Role

	// revokedFamilies are the refresh-token families minted from apiKey or
	// apiToken (kindAPIKeyID, kindAPITokenID) that were revoked for reuse
	// and whose access tokens may not have expired yet.
	revokedFamilies []string

	// lastUsed is when this replica last recorded the credential's use
	// (Unix nanoseconds; 0: never), so that it writes last_used_at at most
	// once a minute whatever the request rate.
	lastUsed atomic.Int64

	older, newer   *cacheEntry // storage order
	userPrev, next *cacheEntry // the user's entries
}

// setLastUsed initializes lastUsed from a row's last_used_at.
func (e *cacheEntry) setLastUsed(t *time.Time) *cacheEntry {
	if t != nil {
		e.lastUsed.Store(t.UnixNano())
	}
	return e
}

func (c *AuthCache) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultAuthCacheTTL
}

func (c *AuthCache) maxEntries() int {
	if c.MaxEntries > 0 {
		return c.MaxEntries
	}
	return DefaultAuthCacheSize
}

// begin returns the generation to pass to the stores that follow a
// database read. Call it before the read starts. A nil cache returns 0.
func (c *AuthCache) begin() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// byHashKind returns the live entry of kind under hash, or nil.
func (c *AuthCache) byHashKind(kind cacheKind, hash [sha256.Size]byte, now time.Time) *cacheEntry {
	c.mu.RLock()
	e := c.byHash[hash]
	c.mu.RUnlock()
	return c.live(e, kind, now)
}

// byIDKind returns the live entry of kind for id, or nil.
func (c *AuthCache) byIDKind(kind cacheKind, id string, now time.Time) *cacheEntry {
	c.mu.RLock()
	e := c.byID[idKey{kind, id}]
	c.mu.RUnlock()
	return c.live(e, kind, now)
}

// roleOf returns userID's cached role in tenantID, or "" (always, from a
// nil cache).
func (c *AuthCache) roleOf(userID, tenantID string, now time.Time) latchkey.Role {
	if c == nil {
		return ""
	}
	c.mu.RLock()
	e := c.roles[roleKey{userID, tenantID}]
	c.mu.RUnlock()
	if e = c.live(e, kindRole, now); e == nil {
		return ""
	}
	return e.role
}

func (c *AuthCache) live(e *cacheEntry, kind cacheKind, now time.Time) *cacheEntry {
	if e == nil || e.kind != kind || !now.Before(e.expires) {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return e
}

// putCredential stores a credential entry read at now, unless the
// generation moved since gen (an invalidation happened during the read)
// or the cache is disabled. It returns e whether stored or not (and on a
// nil cache), for recording the credential's use.
func (c *AuthCache) putCredential(gen uint64, e *cacheEntry, now time.Time) *cacheEntry {
	if c != nil {
		c.put(gen, e, now)
	}
	return e
}

// putRole stores userID's role in tenantID, as putCredential does.
func (c *AuthCache) putRole(gen uint64, userID, tenantID string, role latchkey.Role, now time.Time) {
	if c == nil || role == "" {
		return
	}
	c.put(gen, &cacheEntry{kind: kindRole, roleKey: roleKey{userID, tenantID}, userID: userID, role: role}, now)
}

func (c *AuthCache) put(gen uint64, e *cacheEntry, now time.Time) bool {
	e.expires = now.Add(c.ttl())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled || c.gen.Load() != gen {
		return false
	}
	var old *cacheEntry
	switch e.kind {
	case kindAPIKey, kindAPIToken, kindSession:
		old = c.byHash[e.hash]
		c.byHash[e.hash] = e
	case kindAPIKeyID, kindAPITokenID:
		k := idKey{e.kind, e.id}
		old = c.byID[k]
		c.byID[k] = e
	case kindRole:
		old = c.roles[e.roleKey]
		c.roles[e.roleKey] = e
	}
	if old != nil {
		c.unlink(old)
	}
	// Newest in storage order, and first of its user's entries.
	e.older, e.newer = c.newest, nil
	if c.newest != nil {
		c.newest.newer = e
	} else {
		c.oldest = e
	}
	c.newest = e
	e.userPrev, e.next = nil, c.users[e.userID]
	if e.next != nil {
		e.next.userPrev = e
	}
	c.users[e.userID] = e
	c.n++
	// Drop expired entries (they are the oldest), then the oldest over the bound.
	for max := c.maxEntries(); c.oldest != nil && (c.n > max || !now.Before(c.oldest.expires)); {
		c.remove(c.oldest)
	}
	return true
}

// remove deletes e from its map and unlinks it. Callers hold mu.
func (c *AuthCache) remove(e *cacheEntry) {
	switch e.kind {
	case kindAPIKey, kindAPIToken, kindSession:
		if c.byHash[e.hash] == e {
			delete(c.byHash, e.hash)
		}
	case kindAPIKeyID, kindAPITokenID:
		k := idKey{e.kind, e.id}
		if c.byID[k] == e {
			delete(c.byID, k)
		}
	case kindRole:
		if c.roles[e.roleKey] == e {
			delete(c.roles, e.roleKey)
		}
	}
	c.unlink(e)
}

// unlink takes e out of both lists. Callers hold mu.
func (c *AuthCache) unlink(e *cacheEntry) {
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		c.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		c.newest = e.older
	}
	if e.userPrev != nil {
		e.userPrev.next = e.next
	} else if e.next != nil {
		c.users[e.userID] = e.next
	} else {
		delete(c.users, e.userID)
	}
	if e.next != nil {
		e.next.userPrev = e.userPrev
	}
	e.older, e.newer, e.userPrev, e.next = nil, nil, nil, nil
	c.n--
}

// handle is the event subscriber.
func (c *AuthCache) handle(ev latchkey.Event) {
	c.invalidations.Add(1)
	switch ev.Type {
	case latchkey.EventsInterrupted:
		c.reset(true)
	case latchkey.EventsResumed:
		c.reset(false)
	case latchkey.EventAPIKeyDeleted, latchkey.EventAPIKeyExpiryChanged, latchkey.EventAPITokenDeleted, latchkey.EventUserDeleted,
		latchkey.EventMembershipChanged, latchkey.EventSessionsDeleted, latchkey.EventTokenFamilyRevoked:
		if ev.UserID != "" {
			c.invalidateUser(ev.UserID)
			return
		}
		c.flush()
	default:
		// An event this version does not know: be safe.
		c.flush()
	}
}

// invalidateUser drops every entry of userID: its keys, tokens, sessions,
// the keys and tokens its access tokens come from, and its roles.
func (c *AuthCache) invalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for e := c.users[userID]; e != nil; {
		next := e.next
		c.remove(e)
		e = next
	}
}

// flush drops every entry.
func (c *AuthCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear()
}

// reset drops every entry and sets whether the cache stores anything.
func (c *AuthCache) reset(disabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear()
	c.disabled = disabled
}

// clear empties the cache. Callers hold mu.
func (c *AuthCache) clear() {
	c.gen.Add(1)
	c.byHash = make(map[[sha256.Size]byte]*cacheEntry)
	c.byID = make(map[idKey]*cacheEntry)
	c.roles = make(map[roleKey]*cacheEntry)
	c.users = make(map[string]*cacheEntry)
	c.oldest, c.newest, c.n = nil, nil, 0
}
