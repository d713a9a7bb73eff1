package argon2id_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/argon2id"
)

// fast keeps tests quick; production uses DefaultParams().
var fast = argon2id.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashCompare(t *testing.T) {
	t.Parallel()
	h, err := argon2id.Hash(rand.Reader, "correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash=%q", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("hash contains the password")
	}
	if err := argon2id.Compare(h, "correct horse battery"); err != nil {
		t.Fatalf("Compare(right)=%v", err)
	}
	if err := argon2id.Compare(h, "correct horse batterY"); !errors.Is(err, argon2id.ErrMismatch) {
		t.Fatalf("Compare(wrong)=%v, want ErrMismatch", err)
	}
	h2, _ := argon2id.Hash(rand.Reader, "correct horse battery", fast)
	if h == h2 {
		t.Fatal("same hash twice: salt not random")
	}
}

func TestCompare_Malformed(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5"} {
		if err := argon2id.Compare(h, "x"); err == nil || errors.Is(err, argon2id.ErrMismatch) {
			t.Errorf("Compare(%q)=%v, want malformed error", h, err)
		}
	}
}
