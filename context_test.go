package latchkey_test

import (
	"net/netip"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := latchkey.ParseTrustedProxies("10.0.0.0/8, 127.0.0.1,2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote, xff string
		trusted     []netip.Prefix
		want        string
	}{
		{"10.0.0.1:5555", "", nil, "10.0.0.1"},
		{"10.0.0.1:5555", "203.0.113.9", nil, "10.0.0.1"},                  // no trusted proxies: header ignored
		{"198.51.100.7:5555", "203.0.113.9", trusted, "198.51.100.7"},      // not from a trusted proxy: header ignored
		{"10.0.0.1:5555", "203.0.113.9", trusted, "203.0.113.9"},           // one proxy
		{"10.0.0.1:5555", "203.0.113.9, 10.0.0.2", trusted, "203.0.113.9"}, // two proxies
		{"10.0.0.1:5555", "6.6.6.6, 203.0.113.9", trusted, "203.0.113.9"},  // forged left-most hop: right-most untrusted wins
		{"10.0.0.1:5555", "6.6.6.6,203.0.113.9, 10.0.0.2", trusted, "203.0.113.9"},
		{"10.0.0.1:5555", "203.0.113.9:4711", trusted, "203.0.113.9"},         // a proxy that adds the port
		{"10.0.0.1:5555", "[2001:db8::1]:4711", trusted, "2001:db8::1"},       // IPv6 with port
		{"10.0.0.1:5555", "[2001:db8::1]", trusted, "2001:db8::1"},            // IPv6 in brackets
		{"10.0.0.1:5555", "2001:db8::1", trusted, "2001:db8::1"},              // bare IPv6
		{"10.0.0.1:5555", "not-an-ip", trusted, "10.0.0.1"},                   // junk: the last trusted hop
		{"10.0.0.1:5555", "203.0.113.9, junk, 10.0.0.2", trusted, "10.0.0.2"}, // junk stops the walk
		{"10.0.0.1:5555", " , 10.0.0.2", trusted, "10.0.0.2"},
		{"10.0.0.1:5555", "10.0.0.3, 10.0.0.2", trusted, "10.0.0.3"},     // all trusted: the left-most
		{"127.0.0.1:80", "::ffff:203.0.113.9", trusted, "203.0.113.9"},   // IPv4-mapped
		{"[::ffff:10.0.0.1]:80", "203.0.113.9", trusted, "203.0.113.9"},  // mapped proxy address
		{"[2001:db8:ffff::5]:80", "203.0.113.9", trusted, "203.0.113.9"}, // IPv6 proxy prefix
		{"[::1]:80", "", trusted, "::1"},
		{"pipe", "203.0.113.9", trusted, "pipe"},
	} {
		if got := latchkey.ClientAddr(tc.remote, tc.xff, tc.trusted); got != tc.want {
			t.Errorf("ClientAddr(%q, %q)=%q, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := latchkey.ParseTrustedProxies(" 10.0.0.0/8, 127.0.0.1 ,::1, 192.168.1.77/24,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128", "192.168.1.0/24"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := latchkey.ParseTrustedProxies(bad); latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("ParseTrustedProxies(%q): err=%v", bad, err)
		}
	}
}
