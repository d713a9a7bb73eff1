package latchkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func TestRedactingHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(latchkey.NewRedactingHandler(slog.NewJSONHandler(&buf, nil)))
	k, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	log.With("pre", k).WithGroup("g").Info("got "+k, "s", k, "err", errors.New("bad "+k), slog.Group("inner", "x", k))
	if strings.Contains(buf.String(), k[4:]) {
		t.Fatalf("secret leaked: %s", buf.String())
	}
	if got := strings.Count(buf.String(), "lku_[REDACTED]"); got != 5 {
		t.Fatalf("redactions=%d, want 5: %s", got, buf.String())
	}
}

// Records with nothing to redact pass through unchanged, every kind of
// value intact; one secret anywhere sends the whole record through the
// redacting path.
func TestRedactingHandler_CleanAndMixed(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(latchkey.NewRedactingHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})))
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	attrs := []slog.Attr{
		slog.String("method", "POST"), slog.String("path", "/graphql"), slog.Int("status", 200),
		slog.Uint64("u", 7), slog.Float64("f", 1.5), slog.Bool("b", true),
		slog.Duration("duration", 1500*time.Microsecond), slog.Time("at", at),
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
	want := `{"level":"INFO","msg":"request","method":"POST","path":"/graphql","status":200,"u":7,"f":1.5,"b":true,"duration":1500000,"at":"2026-11-25T12:00:00Z"}` + "\n"
	if buf.String() != want {
		t.Errorf("clean record:\n got %s\nwant %s", buf.String(), want)
	}

	buf.Reset()
	k, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	log.LogAttrs(context.Background(), slog.LevelInfo, "request", append(attrs, slog.String("remote", "x "+k))...)
	if strings.Contains(buf.String(), k[4:]) || !strings.Contains(buf.String(), `"remote":"x lku_[REDACTED]"`) ||
		!strings.Contains(buf.String(), `"duration":1500000`) || !strings.Contains(buf.String(), `"status":200`) {
		t.Errorf("mixed record: %s", buf.String())
	}
}
