package latchkey_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestRedactingHandler(t *testing.T) {
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
