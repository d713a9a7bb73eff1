package client_test

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/client"
)

// A server that is down, or a URL without a scheme, is a *ConnectionError
// that names the URL and the cause in a few words, not a dial or parse error.
func TestConnectionError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, tt := range []struct {
		url, want string
		badURL    bool
	}{
		{down, "cannot reach the API at " + down + ": connection refused", false},
		{"127.0.0.1:4200", `the API URL "127.0.0.1:4200" is not an http:// or https:// URL`, true},
		{"localhost:4200/graphql", `the API URL "localhost:4200/graphql" is not an http:// or https:// URL`, true},
	} {
		c := &client.Client{URL: tt.url}
		_, err := c.Hello(t.Context())
		var ce *client.ConnectionError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: err %T %v, want *ConnectionError", tt.url, err, err)
		}
		if ce.URL != tt.url || err.Error() != tt.want {
			t.Errorf("%s: URL %q, message %q, want %q", tt.url, ce.URL, err.Error(), tt.want)
		}
		if got := errors.Is(err, client.ErrBadURL); got != tt.badURL {
			t.Errorf("%s: Is(ErrBadURL)=%v", tt.url, got)
		}
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`[{"message": "API key expired.", "extensions": {"code": "UNAUTHENTICATED"}}, {"message": "Second."}, {"extensions": {}}]`)
	if got, want := client.Messages(raw), []string{"API key expired.", "Second."}; !reflect.DeepEqual(got, want) {
		t.Errorf("Messages=%q, want %q", got, want)
	}
	if got := client.Messages(json.RawMessage(`"not a list"`)); got != nil {
		t.Errorf("Messages of a string=%q, want nil", got)
	}
}
