package graphql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

const qRotateKey = `mutation($input: rotate_api_key_input!) {
    rotate_api_key(input: $input) { id key token old_key_id old_key_expires_at }
}`

func TestMutation_RotateAPIKey(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	const newID = "77777777-7777-7777-7777-777777777777"
	const secret = "lks_rolledrolledrolledrolledrolledAAAAAA"
	oldExpires := created.Add(time.Hour)
	var got latchkey.APIKeyRotation
	e.APIKeys.RotateAPIKeyFn = func(ctx context.Context, r *latchkey.APIKeyRotation) (string, error) {
		got = *r
		r.NewKey = &latchkey.APIKey{ID: newID, Name: "agent key", UserID: saID}
		r.OldKeyExpiresAt = oldExpires
		return secret, nil
	}
	var data struct {
		RotateAPIKey map[string]string `json:"rotate_api_key"`
	}
	e.Query(t, qRotateKey, map[string]any{"input": map[string]any{
		"key_id": keyID, "old_key_expires_in_seconds": 3600, "expires_at": "2030-01-02T03:04:05Z",
	}}).MustData(t, &data)
	want := map[string]string{"id": newID, "key": secret, "token": secret, "old_key_id": keyID, "old_key_expires_at": "2022-02-23T13:00:00+00:00"}
	mustFields(t, "", data.RotateAPIKey, want)
	if got.OldKeyID != keyID || got.OldKeyExpiresIn != time.Hour || got.ExpiresAt == nil ||
		!got.ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("RotateAPIKey got %+v", got)
	}

	// 0 and no expiry: the old key ends now, the new one never does.
	e.Query(t, qRotateKey, map[string]any{"input": map[string]any{"key_id": keyID, "old_key_expires_in_seconds": 0}}).MustData(t, &data)
	if got.OldKeyExpiresIn != 0 || got.ExpiresAt != nil {
		t.Errorf("RotateAPIKey got %+v", got)
	}
}

// The grace period must be given: rolling must not end the old key by
// default.
func TestMutation_RotateAPIKey_GraceRequired(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APIKeys.RotateAPIKeyFn = func(ctx context.Context, r *latchkey.APIKeyRotation) (string, error) {
		t.Error("RotateAPIKey must not be called")
		return "", nil
	}
	resp := e.Query(t, qRotateKey, map[string]any{"input": map[string]any{"key_id": keyID}})
	if len(resp.Errors) == 0 || !strings.Contains(string(resp.Body), "old_key_expires_in_seconds") {
		t.Fatalf("no error naming the missing field: %s", resp.Body)
	}
}

// The store's refusals reach the client with their codes and messages.
func TestMutation_RotateAPIKey_Errors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		code string
	}{
		{"too long", latchkey.Errorf(latchkey.EINVALID, "The old key's grace period can be at most 2592000 seconds (30 days)."), "BAD_USER_INPUT"},
		{"expired", latchkey.Errorf(latchkey.EINVALID, "That API key has already expired; create a new key instead."), "BAD_USER_INPUT"},
		{"not found", latchkey.Errorf(latchkey.ENOTFOUND, "API key not found."), "NOT_FOUND"},
		{"service account", latchkey.Errorf(latchkey.EFORBIDDEN, "Service accounts cannot roll API keys; ask a tenant admin."), "FORBIDDEN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := MustNewEnv(t)
			var gotGrace time.Duration
			e.APIKeys.RotateAPIKeyFn = func(ctx context.Context, r *latchkey.APIKeyRotation) (string, error) {
				gotGrace = r.OldKeyExpiresIn
				return "", tt.err
			}
			resp := e.Query(t, qRotateKey, map[string]any{"input": map[string]any{"key_id": keyID, "old_key_expires_in_seconds": 2592001}})
			resp.MustError(t, tt.code, false)
			if gotGrace != 2592001*time.Second {
				t.Errorf("grace = %v", gotGrace)
			}
			if msg := tt.err.(*latchkey.Error).Message; !strings.Contains(string(resp.Body), msg) {
				t.Errorf("body %s lacks %q", resp.Body, msg)
			}
			if strings.Contains(string(resp.Body), "lks_") {
				t.Errorf("a secret in an error: %s", resp.Body)
			}
		})
	}
}
