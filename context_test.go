package latchkey_test

import (
	"testing"

	"github.com/latchkey/latchkey"
)

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"10.0.0.1:5555", "", false, "10.0.0.1"},
		{"10.0.0.1:5555", "203.0.113.9", false, "10.0.0.1"}, // untrusted header ignored
		{"10.0.0.1:5555", "203.0.113.9, 10.0.0.2", true, "203.0.113.9"},
		{"10.0.0.1:5555", "203.0.113.9:4711", true, "203.0.113.9"},
		{"10.0.0.1:5555", "[2001:db8::1]:4711", true, "2001:db8::1"},
		{"10.0.0.1:5555", "[2001:db8::1]", true, "2001:db8::1"},
		{"10.0.0.1:5555", " , x", true, "10.0.0.1"},
		{"[::1]:80", "", true, "::1"},
		{"pipe", "", false, "pipe"},
	} {
		if got := latchkey.ClientAddr(tc.remote, tc.xff, tc.trust); got != tc.want {
			t.Errorf("ClientAddr(%q, %q, %v)=%q, want %q", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}
