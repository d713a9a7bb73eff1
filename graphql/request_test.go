package graphql_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
)

// prefectBody is what the Prefect 1.x client sends for a query without
// variables.
const prefectBody = `{"query":"query { auth_info { tenant_id } }","variables":"null"}`

// decodeRequestBodies seed FuzzDecodeRequest: accepted and refused bodies.
var decodeRequestBodies = []string{
	prefectBody,
	`{"query":"query Q($id: UUID!) { x(id: $id) }","variables":{"id":"abc","n":[1,2.5e3,-0],"o":{"k":"}\"{"}}}`,
	`{"query":"q","variables":"{\"a\": 1}"}`,
	`{"query":"q","variables":null}`,
	`{"query":"q","operationName":"Op"}`,
	`{"query":"q","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`,
	`{"query":"a","query":"b"}`,
	`{"query":"a","quer\u0079":"b"}`,
	`{"query":"a","Query":"b"}`,
	`{"query":"a\"b\nc\u00e9\ud83d\ude00\u0000\\d\/"}`,
	"{\"query\":\"a\xffb\"}",
	`{"query":"q","foo":{"a":[1,{"b":"}"}]},"bar":[{"query":"no"}]}`,
	" \t\r\n{ \"query\" \n: \"q\" , \"variables\" :\t{ \"a\" : [ 1 , 2 ] } ,\"extensions\" : null \r\n} \n",
	`null`, `[]`, `"x"`, `1`, `{}`,
	`{"query":"q"}x`, `{"query":"q"}{}`, `{"query":"q",}`, `{"query":"q"`, `{`, ``,
	`{"query":1}`, `{"query":{"a":1}}`,
	`{"variables":[[[[{"a":[[]]}]]]],"extensions":"]}\\"}`,
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tt := range []struct {
		body      string
		query, op string
		vars, ext string        // JSON of the decoded maps; "" for nil
		code      latchkey.Code // latchkey error code; "" for success
	}{
		{body: prefectBody, query: "query { auth_info { tenant_id } }"},
		{body: `{"query":"q","operationName":"Op","variables":{"a":1,"b":[1.5,"x",null,true,{"c":false}]}}`,
			query: "q", op: "Op", vars: `{"a":1,"b":[1.5,"x",null,true,{"c":false}]}`},
		{body: `{"query":"q","variables":"{\"a\": 12345678901234567890}"}`, query: "q", vars: `{"a":12345678901234567890}`},
		{body: `{"query":"q","variables":" {\"a\": 1} "}`, query: "q", vars: `{"a":1}`},
		{body: `{"query":"q","variables":""}`, query: "q"},
		{body: `{"query":"q","variables":" null "}`, query: "q"},
		{body: `{"query":"q","variables":null,"operationName":null}`, query: "q"},
		{body: `{"query":"q","extensions":{"n":12345678901234567890}}`, query: "q", ext: `{"n":12345678901234567890}`},
		{body: `{"query":"q","extensions":null}`, query: "q"},
		{body: `{"query":"q","foo":{"bar":[1]},"Query":"no"}`, query: "q"}, // unknown members are ignored
		{body: `{"query":"a\"b\u00e9\ud83d\ude00"}`, query: "a\"bé😀"},
		{body: ` null `},
		{body: `{}`},

		// Not GraphQL requests.
		{body: `{"query":"a","query":"b"}`, code: latchkey.EINVALID},
		{body: `{"query":"a","quer\u0079":"b"}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":{"x":1},"variables":{"x":2}}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":{"x":1,"x":2}}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":"{\"x\":1,\"x\":2}"}`, code: latchkey.EINVALID},
		{body: `{"query":"q","extensions":{"a":{"b":1,"b":2}}}`, code: latchkey.EINVALID},
		{body: `{"query":"q"} x`, code: latchkey.EINVALID},
		{body: `null0`, code: latchkey.EINVALID},
		{body: `null {}`, code: latchkey.EINVALID},
		{body: `{"query":"q"}{}`, code: latchkey.EINVALID},
		{body: `{"query":"q",}`, code: latchkey.EINVALID},
		{body: `{"query":"q"`, code: latchkey.EINVALID},
		{body: ``, code: latchkey.EINVALID},
		{body: `[]`, code: latchkey.EINVALID},
		{body: `"q"`, code: latchkey.EINVALID},
		{body: `{"query":1}`, code: latchkey.EINVALID},
		{body: `{"operationName":["x"]}`, code: latchkey.EINVALID},
		{body: "{\"query\":\"a\xffb\"}", code: latchkey.EINVALID},
		{body: `{"query":"q","extensions":[1]}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":[1]}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":42}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":"[1]"}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":"{\"a\": 1} {}"}`, code: latchkey.EINVALID},
		{body: `{"query":"q","variables":"{not json"}`, code: latchkey.EINVALID},

		// Over the input limits.
		{body: `{"query":"q","variables":{"x":` + deep(graphql.MaxInputDepth) + `}}`, query: "q",
			vars: `{"x":` + deep(graphql.MaxInputDepth) + `}`},
		{body: `{"query":"q","variables":{"x":` + deep(graphql.MaxInputDepth+1) + `}}`, code: latchkey.ETOOLARGE},
		{body: `{"query":"q","variables":` + jsonString(`{"x":`+deep(graphql.MaxInputDepth+1)+`}`) + `}`, code: latchkey.ETOOLARGE},
		{body: `{"query":"q","extensions":{"x":` + deep(graphql.MaxInputDepth+1) + `}}`, code: latchkey.ETOOLARGE},
		{body: `{"query":"q","foo":` + deep(graphql.MaxInputDepth+1) + `}`, code: latchkey.ETOOLARGE},
		{body: `{"query":"q","variables":{"x":[` + items("0", graphql.MaxInputWidth+1) + `]}}`, code: latchkey.ETOOLARGE},
	} {
		params, err := graphql.DecodeRequest([]byte(tt.body), false)
		if got := latchkey.ErrorCode(err); got != tt.code {
			t.Errorf("body %.100q: error %v (code %q), want code %q", tt.body, err, got, tt.code)
			continue
		} else if err != nil {
			if msg := latchkey.ErrorMessage(err); !strings.HasSuffix(msg, ".") || strings.Contains(msg, "graphql:") {
				t.Errorf("body %.100q: message %q is not for users", tt.body, msg)
			}
			continue
		}
		if params.Query != tt.query || params.OperationName != tt.op {
			t.Errorf("body %.100q: query %q op %q, want %q %q", tt.body, params.Query, params.OperationName, tt.query, tt.op)
		}
		checkJSON(t, tt.body, "variables", params.Variables, tt.vars)
		checkJSON(t, tt.body, "extensions", params.Extensions, tt.ext)
	}
}

// checkJSON fails t unless m holds what the JSON text want does, with
// numbers as json.Number ("" wants a nil map).
func checkJSON(t *testing.T, body, name string, m map[string]any, want string) {
	t.Helper()
	if want == "" {
		if m != nil {
			t.Errorf("body %.100q: %s = %v, want nil", body, name, m)
		}
		return
	}
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	var w map[string]any
	if err := dec.Decode(&w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, w) {
		t.Errorf("body %.100q: %s = %#v, want %#v", body, name, m, w)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Requests without a credential have smaller limits.
func TestDecodeRequest_Anonymous(t *testing.T) {
	t.Parallel()
	refresh := `{"query":"mutation($i: refresh_token_input!) { refresh_token(input: $i) { access_token } }","variables":"{\"i\": {\"access_token\": \"eyJ.e30.sig\"}}"}`
	if _, err := graphql.DecodeRequest([]byte(refresh), true); err != nil {
		t.Fatalf("refresh_token: %v", err)
	}
	for _, body := range []string{
		`{"query":"q","variables":{"x":[` + items("0", graphql.AnonymousMaxValues) + `]}}`,
		`{"query":"q","variables":{"x":` + strings.Repeat("[", graphql.AnonymousMaxInputDepth+1) + strings.Repeat("]", graphql.AnonymousMaxInputDepth+1) + `}}`,
	} {
		_, err := graphql.DecodeRequest([]byte(body), true)
		if latchkey.ErrorCode(err) != latchkey.ETOOLARGE || !strings.Contains(latchkey.ErrorMessage(err), "without a credential") {
			t.Errorf("body %.80q: error %v, want ETOOLARGE for requests without a credential", body, err)
		}
		if _, err := graphql.DecodeRequest([]byte(body), false); err != nil {
			t.Errorf("body %.80q with a credential: %v", body, err)
		}
	}
}

// FuzzDecodeRequest checks that whatever DecodeRequest accepts is one valid
// JSON object (or null) without duplicate names, whose query and
// operationName are what encoding/json reads.
func FuzzDecodeRequest(f *testing.F) {
	for _, body := range decodeRequestBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		params, err := graphql.DecodeRequest(body, false)
		if err != nil {
			if c := latchkey.ErrorCode(err); c != latchkey.EINVALID && c != latchkey.ETOOLARGE {
				t.Fatalf("body %q: error code %q: %v", body, c, err)
			}
			return
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("body %q is not valid JSON but was accepted", body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		q, _ := m["query"].(string)
		op, _ := m["operationName"].(string)
		if params.Query != q || params.OperationName != op {
			t.Fatalf("body %q: query %q op %q, encoding/json reads %q %q", body, params.Query, params.OperationName, q, op)
		}
	})
}

// The Prefect client's body without variables costs two allocations: the
// parameters and the query's copy.
func TestDecodeRequest_Allocs(t *testing.T) {
	for _, tc := range []struct {
		body   string
		allocs float64
	}{
		{prefectBody, 2},
	} {
		dec := jsontext.NewDecoder(bytes.NewBuffer(nil))
		lim := graphql.NewLimits(false)
		var buf bytes.Buffer
		allocs := testing.AllocsPerRun(100, func() {
			buf.Reset()
			buf.WriteString(tc.body)
			if _, err := graphql.DecodeRequestWith(dec, &buf, lim); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.allocs {
			t.Errorf("body %s: %v allocations, want at most %v", tc.body, allocs, tc.allocs)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	t.Parallel()
	nest := func(open, inner, close string, n int) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	for _, tt := range []struct {
		query     string
		anonymous bool
		code      latchkey.Code
	}{
		{query: `{ hello }`},
		{query: `mutation($i: refresh_token_input!) { refresh_token(input: $i) { access_token } }`, anonymous: true},
		{query: `query($ids: [uuid!]) { flow_run(where: {id: {_in: $ids}, _or: [{state: {_eq: "Scheduled"}}, {state: {_eq: "Running"}, task_runs: {state_start_time: {_lte: "x"}}}]}) { id task_runs(where: {state_start_time: {_lte: "x"}}) { id } } }`},
		{query: `{ a(x: ` + nest("[", "1", "]", graphql.MaxInputDepth) + `) }`},
		{query: `{ a(x: ` + nest("[", "1", "]", graphql.MaxInputDepth+1) + `) }`, code: latchkey.ETOOLARGE},
		{query: `{ a(x: ` + nest("{_not: ", "{}", "}", graphql.MaxInputDepth+1) + `) }`, code: latchkey.ETOOLARGE},
		{query: `query($x: [Int] = ` + nest("[", "1", "]", graphql.MaxInputDepth+1) + `) { a }`, code: latchkey.ETOOLARGE},
		{query: `{ a @include(if: ` + nest("[", "1", "]", graphql.MaxInputDepth+1) + `) }`, code: latchkey.ETOOLARGE},
		{query: `{ a(x: [` + items("1", graphql.MaxInputWidth) + `]) }`},
		{query: `{ a(x: [` + items("$v", 4000) + `]) }`},
		{query: `{ a(x: [` + items("1", graphql.MaxInputWidth+1) + `]) }`, code: latchkey.ETOOLARGE},
		{query: `{ a(x: {_or: [` + items("{}", graphql.MaxInputWidth+1) + `]}) }`, code: latchkey.ETOOLARGE},
		{query: `{ a(` + items("x: 1", graphql.MaxInputWidth+1) + `) }`, code: latchkey.ETOOLARGE},
		{query: `{ hello ` + strings.Repeat("__typename ", graphql.DefaultMaxTokens) + `}`, code: latchkey.ETOOLARGE},
		{query: `{ a(x: ` + nest("[", "1", "]", graphql.AnonymousMaxInputDepth+1) + `) }`, anonymous: true, code: latchkey.ETOOLARGE},
	} {
		err := graphql.CheckQuery(tt.query, tt.anonymous)
		if got := latchkey.ErrorCode(err); got != tt.code {
			t.Errorf("query %.80q (anonymous %v): error %v, want code %q", tt.query, tt.anonymous, err, tt.code)
		}
	}
}
