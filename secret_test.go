package latchkey_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestSecret_RoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, prefix := range []string{latchkey.PrefixUserKey, latchkey.PrefixServiceKey, latchkey.PrefixAPIToken, latchkey.PrefixRefreshToken} {
		for range 50 {
			s, err := latchkey.NewSecret(rand.Reader, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) != latchkey.SecretLen || !strings.HasPrefix(s, prefix) {
				t.Fatalf("secret %q: bad shape", s)
			}
			if seen[s] {
				t.Fatal("duplicate secret")
			}
			seen[s] = true
			if got, err := latchkey.ParseSecret(s); err != nil || got != prefix {
				t.Fatalf("ParseSecret=%q, %v", got, err)
			}
		}
	}
}

func TestSecret_ChecksumCatchesTypos(t *testing.T) {
	t.Parallel()
	s, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	for i := 0; i < len(s); i++ {
		for _, c := range []byte{'0', 'z', 'Q'} {
			if s[i] == c {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := latchkey.ParseSecret(typo); err == nil {
				t.Fatalf("typo at %d accepted", i)
			}
		}
	}
	// Swapping two adjacent different characters.
	for i := 4; i+1 < len(s); i++ {
		if s[i] != s[i+1] {
			sw := s[:i] + string(s[i+1]) + string(s[i]) + s[i+2:]
			if _, err := latchkey.ParseSecret(sw); err == nil {
				t.Fatalf("transposition at %d accepted", i)
			}
		}
	}
	for _, bad := range []string{"", s[:len(s)-1], s + "x", "xxx_" + s[4:], "lku_" + strings.Repeat("!", latchkey.SecretLen-4)} {
		if _, err := latchkey.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}

func TestSecret_Entropy(t *testing.T) {
	t.Parallel()
	// A deterministic reader yields a deterministic secret; every body byte
	// must come from it (no constant filler).
	a, _ := latchkey.NewSecret(bytes.NewReader(bytes.Repeat([]byte{1, 2, 3, 4}, 64)), latchkey.PrefixUserKey)
	b, _ := latchkey.NewSecret(bytes.NewReader(bytes.Repeat([]byte{5, 6, 7, 8}, 64)), latchkey.PrefixUserKey)
	if a == b {
		t.Fatal("secret ignores its randomness")
	}
	if _, err := latchkey.NewSecret(bytes.NewReader(nil), latchkey.PrefixUserKey); err == nil {
		t.Fatal("expected error from empty reader")
	}
	if _, err := latchkey.NewSecret(rand.Reader, "bad_"); err == nil {
		t.Fatal("expected error for unknown prefix")
	}
}

func TestHashSecret(t *testing.T) {
	t.Parallel()
	s, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	h := latchkey.HashSecret(s)
	if len(h) != 32 || !latchkey.EqualHash(h, latchkey.HashSecret(s)) || latchkey.EqualHash(h, latchkey.HashSecret(s+"x")) {
		t.Fatal("HashSecret/EqualHash wrong")
	}
}

func TestRedactSecrets(t *testing.T) {
	t.Parallel()
	k, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixServiceKey)
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	out := latchkey.RedactSecrets("key=" + k + " auth=Bearer " + jwt + " done")
	if strings.Contains(out, k[4:]) || strings.Contains(out, "c2lnbmF0dXJl") {
		t.Fatalf("not redacted: %q", out)
	}
	if !strings.Contains(out, "lks_[REDACTED]") || !strings.HasSuffix(out, " done") {
		t.Fatalf("out=%q", out)
	}
}

func FuzzRedactSecrets(f *testing.F) {
	k, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixRefreshToken)
	f.Add("plain text", k)
	f.Add("a_b", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
	f.Fuzz(func(t *testing.T, pre, secret string) {
		out := latchkey.RedactSecrets(pre + " " + secret + " ")
		if _, err := latchkey.ParseSecret(secret); err == nil && strings.Contains(out, secret[4:]) {
			t.Fatalf("secret survived: %q", out)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	s, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	f.Add(s)
	f.Add("lku_")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := latchkey.ParseSecret(in)
		if err == nil && (len(in) != latchkey.SecretLen || !strings.HasPrefix(in, p)) {
			t.Fatalf("accepted %q", in)
		}
	})
}

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Tenant One": "tenant-one", "  A__b--C ": "a-b-c", "élan": "lan", "!!!": ""} {
		if got := latchkey.Slugify(in); got != want {
			t.Errorf("Slugify(%q)=%q, want %q", in, got, want)
		}
	}
}
