package graphql_test

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/graphql"
)

// worstShape is an anonymous request body built to cost as much as one
// can under the size limit.
type worstShape struct {
	name string
	body string
}

// nest returns open repeated n times, then inner, then close repeated n times.
func nest(open, inner, close string, n int) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// items returns n copies of item separated by commas.
func items(item string, n int) string {
	return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
}

// requestBody returns the JSON body of query with the variables member
// varsJSON (JSON text, written as it is).
func requestBody(query, varsJSON string) string {
	q, _ := json.Marshal(query)
	if varsJSON == "" {
		return `{"query":` + string(q) + `}`
	}
	return `{"query":` + string(q) + `,"variables":` + varsJSON + `}`
}

// worstShapes returns the costliest request bodies we know, each about
// size bytes long.
func worstShapes(size int) []worstShape {
	const filterQ = `query($w: auth_api_key_bool_exp) { auth_api_key(where: $w) { id } }`
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	numbered := func(format string, n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 && strings.HasPrefix(format, `"`) {
				b.WriteByte(',')
			}
			b.WriteString(strings.ReplaceAll(format, "N", strconv.Itoa(i)))
		}
		return b.String()
	}
	deepJSON := nest(`[`, `1`, `]`, size/2)
	deepJSONStr := nest(`[`, `1`, `]`, size/2)
	return []worstShape{
		{"deep _not in variables", requestBody(filterQ, `{"w":`+nest(`{"_not":`, `{}`, `}`, size/9)+`}`)},
		{"deep _not in variables string", requestBody(filterQ, str(`{"w":`+nest(`{"_not":`, `{}`, `}`, size/11)+`}`))},
		{"wide _or in variables", requestBody(filterQ, `{"w":{"_or":[`+items(`{}`, size/3)+`]}}`)},
		{"wide _or in variables string", requestBody(filterQ, str(`{"w":{"_or":[`+items(`{}`, size/3)+`]}}`))},
		{"deep _not literal", requestBody(`{ auth_api_key(where: `+nest(`{_not:`, `{}`, `}`, size/7)+`) { id } }`, "")},
		{"wide _or literal", requestBody(`{ auth_api_key(where: {_or: [`+items(`{}`, size/3)+`]}) { id } }`, "")},
		{"deep list literal", requestBody(`{ auth_api_key(order_by: `+nest(`[`, `{id: asc}`, `]`, size/2)+`) { id } }`, "")},
		{"wide list literal", requestBody(`{ auth_api_key(order_by: [`+items(`{id: asc}`, size/10)+`]) { id } }`, "")},
		{"many aliases", requestBody(`{ `+strings.Repeat("a: hello ", size/9)+`}`, "")},
		{"many tokens", requestBody(`{ hello `+strings.Repeat("__typename ", size/11)+`}`, "")},
		{"long string literal", requestBody(`{ hello(x: "`+strings.Repeat("x", size)+`") }`, "")},
		{"long comment", requestBody("{ hello }\n#"+strings.Repeat("x", size), "")},
		{"long strings in variables", requestBody(`{ hello }`, `{"x":"`+strings.Repeat("x", size)+`"}`)},
		{"long escaped string in variables", requestBody(`{ hello }`, `{"x":"`+strings.Repeat(`\u00e9`, size/6)+`"}`)},
		{"deep JSON in variables", requestBody(`{ hello }`, `{"x":`+deepJSON+`}`)},
		{"deep JSON in variables string", requestBody(`{ hello }`, str(`{"x":`+deepJSONStr+`}`))},
		{"wide JSON in variables", requestBody(`{ hello }`, `{"x":[`+items(`0`, size/2)+`]}`)},
		{"many variables", requestBody(`{ hello }`, `{`+numbered(`"aN":0`, size/12)+`}`)},
		{"deep JSON in extensions", `{"query":"{ hello }","extensions":{"x":` + deepJSON + `}}`},
		{"deep JSON unknown member", `{"query":"{ hello }","foo":` + deepJSON + `}`},
		{"refresh_token deep input", requestBody(`mutation($i: refresh_token_input!) { refresh_token(input: $i) { access_token } }`,
			`{"i":{"access_token":"x","x":`+deepJSON+`}}`)},
		{"many variable definitions", requestBody(`query(`+numbered(`$vN: Int `, size/14)+`) { hello }`, "")},
	}
}

// Sizes of the worst shapes: filling the anonymous body limit, and the
// body limit for requests with a credential.
const (
	anonShapeSize = graphql.DefaultMaxAnonymousBodyBytes - 1024
	fullShapeSize = graphql.DefaultMaxBodyBytes - 70<<10
)

// BenchmarkWorstShapes measures the worst shapes anonymously (under the
// anonymous body limit, and at 1 MiB, which that limit refuses) and with a
// credential at 1 MiB.
func BenchmarkWorstShapes(b *testing.B) {
	e := MustNewEnv(b)
	auth := map[string]string{"Authorization": "Bearer " + goodKey}
	for _, bc := range []struct {
		name    string
		size    int
		headers map[string]string
	}{
		{"anonymous", anonShapeSize, nil},
		{"anonymous 1MiB", fullShapeSize, nil},
		{"credential 1MiB", fullShapeSize, auth},
	} {
		for _, ws := range worstShapes(bc.size) {
			b.Run(bc.name+"/"+ws.name, func(b *testing.B) {
				b.SetBytes(int64(len(ws.body)))
				for b.Loop() {
					e.Post(b, ws.body, bc.headers)
				}
			})
		}
	}
}

// BenchmarkHandler_Ordinary measures whole requests of the usual shapes,
// front door included.
func BenchmarkHandler_Ordinary(b *testing.B) {
	e := MustNewEnv(b)
	auth := map[string]string{"Authorization": "Bearer " + goodKey}
	for _, bc := range []struct {
		name    string
		body    string
		headers map[string]string
	}{
		{"hello anonymous", `{"query":"{ hello }","variables":"null"}`, nil},
		{"auth_info", `{"query":"query { auth_info { tenant_id user_id } }","variables":"null"}`, auth},
		{"tenant by slug, variables string", requestBody(`query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id slug name } }`,
			`"{\"slug\": \"tenant-two\"}"`), auth},
		{"tenant by slug, variables object", requestBody(`query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id slug name } }`,
			`{"slug": "tenant-two"}`), auth},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.Post(b, bc.body, bc.headers)
			}
		})
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWorstShapes_Cheap checks that no anonymous request, whatever its
// shape, costs much CPU. The target is 10 ms (see BenchmarkWorstShapes);
// the bound asserted is five times that, on the cheapest of three tries,
// measured as the process's CPU time (user and system) so that a loaded
// machine does not make it flaky. Before the input limits, the deep _not
// shapes cost seconds. With a credential the same shapes at 1 MiB are
// bounded too, more loosely: what is left is linear in the body (the
// costliest, ~75,000 unused variables, takes ~80 ms decoding them). Not
// parallel, so that nothing else runs in the process meanwhile.
func TestWorstShapes_Cheap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1 MiB bodies")
	}
	e := MustNewEnv(t)
	auth := map[string]string{"Authorization": "Bearer " + goodKey}
	for _, tc := range []struct {
		name    string
		size    int
		limit   int
		headers map[string]string
		bound   time.Duration
	}{
		{"anonymous", anonShapeSize, graphql.DefaultMaxAnonymousBodyBytes, nil, 50 * time.Millisecond},
		{"anonymous 1MiB", fullShapeSize, graphql.DefaultMaxBodyBytes, nil, 50 * time.Millisecond},
		{"credential 1MiB", fullShapeSize, graphql.DefaultMaxBodyBytes, auth, 500 * time.Millisecond},
	} {
		for _, ws := range worstShapes(tc.size) {
			if len(ws.body) > tc.limit {
				t.Fatalf("%s %s: %d-byte body is over the limit", tc.name, ws.name, len(ws.body))
			}
			best := time.Duration(1<<63 - 1)
			var resp *Response
			for range 3 {
				runtime.GC()
				start := cpuTime(t)
				resp = e.Post(t, ws.body, tc.headers)
				best = min(best, cpuTime(t)-start)
			}
			t.Logf("%-16s %-34s %7d bytes %8s CPU  %d %s", tc.name, ws.name, len(ws.body), best, resp.Status, resp.Code())
			if best > tc.bound {
				t.Errorf("%s %s: %s of CPU, want at most %s", tc.name, ws.name, best, tc.bound)
			}
		}
	}
}
