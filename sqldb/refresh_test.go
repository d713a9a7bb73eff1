package sqldb_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// Minting writes nothing: SwitchTenant leaves every table as it was.
func TestAuthService_SwitchTenantWritesNothing(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		adminCtx := e.adminCtx(t)
		count := func() int {
			return latchkeytest.MustCount(t, db, `SELECT (SELECT COUNT(*) FROM refresh_families) + (SELECT COUNT(*) FROM refresh_tokens) + (SELECT COUNT(*) FROM audit_events)`)
		}
		before := count()
		for range 20 {
			if _, err := e.auth.SwitchTenant(adminCtx, ""); err != nil {
				t.Fatal(err)
			}
		}
		if after := count(); after != before {
			t.Fatalf("rows %d -> %d", before, after)
		}
	})
}

// 64 concurrent refreshes of one token: exactly one wins; the others are
// reuses, which revoke the family (the winner's new pair included).
func TestAuthService_RefreshRace(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := context.Background()
		at, err := e.auth.SwitchTenant(e.adminCtx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		// A second generation first, so that the race is on an UPDATE as
		// well as on the first use's INSERT.
		for gen := range 2 {
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				wins   []*latchkey.AccessToken
				others []error
			)
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					next, err := e.auth.RefreshAccessToken(ctx, at.RefreshToken, at.AccessToken)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						wins = append(wins, next)
					} else {
						others = append(others, err)
					}
				}()
			}
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("generation %d: %d refreshes won, want exactly 1", gen, len(wins))
			}
			for _, err := range others {
				if latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
					t.Fatalf("a losing refresh: %v", err)
				}
			}
			if gen == 0 {
				// Losers were reuses: the family is revoked, winner included.
				if _, err := e.auth.RefreshAccessToken(ctx, wins[0].RefreshToken, wins[0].AccessToken); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
					t.Fatalf("the winner's token after the family was revoked: %v", err)
				}
				// Start again with a fresh family, refreshed once alone.
				if at, err = e.auth.SwitchTenant(e.adminCtx(t), ""); err != nil {
					t.Fatal(err)
				}
				if at, err = e.auth.RefreshAccessToken(ctx, at.RefreshToken, at.AccessToken); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// Refresh tokens stored before they were self-describing keep working
// until they expire: once, into the new kind, in the same family; a
// replay of the old one then revokes the family.
func TestAuthService_RefreshStoredToken(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := context.Background()
		a, err := e.auth.Authenticate(ctx, e.f.AdminKey, "")
		if err != nil {
			t.Fatal(err)
		}
		// What the previous version stored for a switch_tenant.
		old, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixRefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		jti, family := "0190aaaa-0000-7000-8000-000000000001", "0190aaaa-0000-7000-8000-000000000002"
		now := clock.Now().UTC().Truncate(time.Second)
		access, err := e.jwt.MintAccessToken(ctx, latchkey.AccessClaims{ID: jti, UserID: a.User.ID, TenantID: a.TenantID, APIKeyID: a.APIKeyID,
			IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(latchkey.DefaultAccessTokenTTL)})
		if err != nil {
			t.Fatal(err)
		}
		latchkeytest.MustExec(t, db, `INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, tenant_id, api_key_id, api_token_id, access_token_id, created_at, expires_at, used_at)
			VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL)`,
			"0190aaaa-0000-7000-8000-000000000003", latchkey.HashSecret(old), family, a.User.ID, a.TenantID, a.APIKeyID, jti,
			sqldb.Time(now), sqldb.Time(now.Add(latchkey.DefaultRefreshTokenTTL)))

		next, err := e.auth.RefreshAccessToken(ctx, old, access)
		if err != nil {
			t.Fatalf("stored refresh token: %v", err)
		}
		if len(next.RefreshToken) == latchkey.SecretLen || !strings.HasPrefix(next.RefreshToken, latchkey.PrefixRefreshToken) {
			t.Fatalf("the new refresh token is not self-describing: %d characters", len(next.RefreshToken))
		}
		if _, err := e.auth.Authenticate(ctx, next.AccessToken, ""); err != nil {
			t.Fatal(err)
		}
		// Replaying the stored token: reuse, the family and its new access
		// token are revoked.
		_, err = e.auth.RefreshAccessToken(ctx, old, access)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Refresh token reuse detected")
		_, err = e.auth.Authenticate(ctx, next.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "used twice")
		_, err = e.auth.RefreshAccessToken(ctx, next.RefreshToken, next.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
	})
}

// A forged, truncated or tampered refresh token, or one signed under a
// system secret the server no longer has, is invalid; an expired one says so.
func TestAuthService_RefreshTokenSignature(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := context.Background()
		at := e.mustSwitchTenant(t, e.adminCtx(t), "")
		tok := at.RefreshToken
		flip := func(i int) string {
			b := []byte(tok)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		for _, bad := range []string{tok[:len(tok)-1], tok + "A", flip(10), flip(len(tok) / 2), flip(len(tok) - 2), "lkr_" + strings.Repeat("A", len(tok)-4)} {
			_, err := e.auth.RefreshAccessToken(ctx, bad, at.AccessToken)
			expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
		}
		clock.Add(latchkey.DefaultRefreshTokenTTL)
		_, err := e.auth.RefreshAccessToken(ctx, tok, at.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Refresh token expired")
	})
}
