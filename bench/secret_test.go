package bench_test

import (
	"crypto/rand"
	"testing"

	"github.com/latchkey/latchkey"
)

// Benchmarks of the per-request work on a secret: checking its shape and
// checksum, and hashing it for the lookup.

func mustSecret(tb testing.TB) string {
	tb.Helper()
	s, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkParseSecret(b *testing.B) {
	s := mustSecret(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := latchkey.ParseSecret(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSecret_BadChecksum(b *testing.B) {
	s := mustSecret(b)
	last := "0"
	if s[len(s)-1] == '0' {
		last = "1"
	}
	bad := s[:len(s)-1] + last // a typo the checksum catches
	b.ReportAllocs()
	for b.Loop() {
		if _, err := latchkey.ParseSecret(bad); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkHashSecret(b *testing.B) {
	s := mustSecret(b)
	b.ReportAllocs()
	for b.Loop() {
		if h := latchkey.HashSecret(s); len(h) != 32 {
			b.Fatal(len(h))
		}
	}
}

func BenchmarkNewSecret(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		mustSecret(b)
	}
}
