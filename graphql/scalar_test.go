package graphql_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
)

func TestUUID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   any
		want string
		ok   bool
	}{
		{"11111111-1111-1111-1111-111111111111", "11111111-1111-1111-1111-111111111111", true},
		{"ABCDEF01-2345-6789-ABCD-EF0123456789", "abcdef01-2345-6789-abcd-ef0123456789", true},
		{"11111111111111111111111111111111", "", false},
		{"{11111111-1111-1111-1111-111111111111}", "", false},
		{"urn:uuid:11111111-1111-1111-1111-111111111111", "", false},
		{"g1111111-1111-1111-1111-111111111111", "", false},
		{"11111111-1111-1111-1111-11111111111", "", false},
		{"", "", false},
		{42, "", false},
	} {
		got, err := graphql.UnmarshalUUID(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("UnmarshalUUID(%v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("UnmarshalUUID(%v) error = %v, want EINVALID", tt.in, err)
		}
	}

	var buf bytes.Buffer
	graphql.MarshalUUID("").MarshalGQL(&buf)
	if got, want := buf.String(), "null"; got != want {
		t.Errorf("MarshalUUID(\"\") = %s, want %s", got, want)
	}
}

func TestTimestamptz(t *testing.T) {
	t.Parallel()
	want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"2030-01-01T00:00:00+00:00",
		"2030-01-01T00:00:00Z",
		"2030-01-01T01:00:00+01:00",
		"2029-12-31T19:00:00-05:00",
		"2030-01-01 00:00:00+00:00",
		"2030-01-01T00:00:00.000000+00:00",
		"2030-01-01T00:00:00+0000",
		"2030-01-01T00:00:00+00",
		" 2030-01-01T00:00:00Z ",
	} {
		got, err := graphql.UnmarshalTimestamptz(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("UnmarshalTimestamptz(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"2030-01-01", "2030-01-01T00:00:00", "next year", "", 1893456000} {
		if _, err := graphql.UnmarshalTimestamptz(in); latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("UnmarshalTimestamptz(%v) error = %v, want EINVALID", in, err)
		}
	}

	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{want, `"2030-01-01T00:00:00+00:00"`},
		{time.Date(2030, 1, 1, 2, 0, 0, 0, time.FixedZone("", 2*3600)), `"2030-01-01T00:00:00+00:00"`},
		{time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.UTC), `"2030-01-01T00:00:00.123456+00:00"`},
	} {
		var buf bytes.Buffer
		graphql.MarshalTimestamptz(tt.in).MarshalGQL(&buf)
		if got := buf.String(); got != tt.want {
			t.Errorf("MarshalTimestamptz(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestServer_DisableIntrospection(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	s := *e.Server
	s.DisableIntrospection = true
	e.Server = &s
	e.SetHandler(s.Handler())
	resp := e.QueryAs(t, "", nil, `{ __schema { queryType { name } } }`, nil)
	resp.MustError(t, "FORBIDDEN", false)
	if strings.Contains(resp.Body, "queryType") {
		t.Errorf("introspection answered: %s", resp.Body)
	}
	var data struct{ Hello string }
	e.QueryAs(t, "", nil, `{ hello }`, nil).MustData(t, &data)
}

// GraphQL's Int is 32-bit: larger arguments and variables are refused
// before any resolver runs.
func TestHandler_Int32(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var limits []int
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		limits = append(limits, f.Offset)
		return nil, 0, nil
	}
	// offset: limit has its own maximum (1000).
	const q = `query($n: Int) { auth_api_key(offset: $n) { id } }`
	for _, n := range []string{"2147483648", "-2147483649", "9223372036854775807", "9223372036854775808", "99999999999999999999999"} {
		body := `{"query": "` + q + `", "variables": {"n": ` + n + `}}`
		resp := e.Post(t, body, map[string]string{"Authorization": "Bearer " + goodKey})
		if len(n) < 19 { // beyond 64 bits, gqlparser's validator refuses it first, in its words
			resp.MustError(t, "BAD_USER_INPUT", true)
			if !strings.Contains(resp.Errors[0].Message, "32-bit") {
				t.Errorf("variable %s: message %q, want the range", n, resp.Errors[0].Message)
			}
		} else if len(resp.Errors) == 0 {
			t.Errorf("variable %s: %s", n, resp.Body)
		}
		resp = e.Query(t, `{ auth_api_key(offset: `+n+`) { id } }`, nil)
		if len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, "32-bit") {
			t.Errorf("literal %s: %s", n, resp.Body)
		}
	}
	if len(limits) != 0 {
		t.Errorf("FindAPIKeys called with limits %v", limits)
	}
	for _, n := range []int{2147483647, 5, 1} {
		var data map[string]any
		e.Query(t, q, map[string]any{"n": n}).MustData(t, &data)
	}
	if len(limits) != 3 || limits[0] != 2147483647 {
		t.Errorf("limits = %v", limits)
	}
}
