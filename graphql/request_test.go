package graphql_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/graphql"
)

// prefectBody is what the Prefect 1.x client sends for a query without
// variables.
const prefectBody = `{"query":"query { auth_info { tenant_id } }","variables":"null"}`

// decodeRequestBodies are tricky bodies on and off DecodeRequest's fast
// path. They seed FuzzDecodeRequest too.
var decodeRequestBodies = []string{
	prefectBody,
	`{"query":"query Q($id: UUID!) { x(id: $id) }","variables":{"id":"abc","n":[1,2.5e3,-0],"o":{"k":"}\"{"}}}`,
	`{"query":"q","variables":"{\"a\": 1}"}`,
	`{"query":"q","variables":null}`,
	`{"query":"q"}`,
	`{"query":"q","operationName":"Op"}`,
	`{"operationName":null,"query":"q"}`,
	`{"query":"","operationName":""}`,
	`{"query":"q","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`,
	`{"extensions":true,"variables":-1.5e-3}`,
	`{"variables":12345678901234567890123,"extensions":false}`,
	`{"query":"a","query":"b","variables":{"x":1},"variables":[2],"operationName":"A","operationName":"B"}`,
	`{"query":"a","query":null}`,
	`{"query":"a","Query":"b"}`,
	`{"query":"a\"b\nc\u00e9\ud83d\ude00\u0000\\d\/"}`,
	`{"query":"\ud800x","operationName":"\udc00"}`,
	"{\"query\":\"a\xffb\"}",
	"{\"operationName\":\"\xe2\x82\",\"query\":\"\xed\xa0\x80\"}",
	"{\"query\":\"\xef\xbf\xbd \xe2\x82\xac\",\"variables\":\"\xff\"}",
	"{\"qu\xffery\":\"q\"}",
	`{"Query":"q"}`,
	`{"QUERY":"q","OPERATIONNAME":"o","Extensions":{}}`,
	`{"variableS":{"a":1}}`,
	"{\"variable\xc5\xbf\":{\"a\":1}}", // ſ folds to s
	`{"quer\u0079":"q"}`,
	`{"query":"q","foo":{"a":[1,{"b":"}"}]},"bar":[{"query":"no"}]}`,
	`{"foo":"bar"}`,
	" \t\r\n{ \"query\" \n: \"q\" , \"variables\" :\t{ \"a\" : [ 1 , 2 ] } ,\"extensions\" : null \r\n} \n",
	`null`,
	`  null  `,
	`[]`,
	`"x"`,
	`1`,
	`true`,
	`{}`,
	` { } `,
	`{"query":"q"}x`,
	`{"query":"q"}{}`,
	`{"query":"q",}`,
	`{"query":"q"`,
	`{"query":`,
	`{`,
	``,
	`   `,
	"{\"query\":\"a\tb\"}",
	`{"query":1}`,
	`{"query":true,"variables":{}}`,
	`{"query":{"a":1}}`,
	`{"query":["q"]}`,
	`{"operationName":1.5,"query":"q"}`,
	`{"variables":{"a":"}\"]","b":["\\",{"c":"\"}"}]},"query":"q"}`,
	`{"variables":[[[[{"a":[[]]}]]]],"extensions":"]}\\"}`,
}

// checkDecodeRequest fails t unless DecodeRequest decodes body into a copy
// of start exactly as json.Unmarshal does, without aliasing body.
func checkDecodeRequest(t *testing.T, body []byte, start graphql.Request) {
	t.Helper()
	want, got := cloneRequest(start), cloneRequest(start)
	wantErr := json.Unmarshal(body, &want)
	b := bytes.Clone(body)
	gotErr := graphql.DecodeRequest(b, &got)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q: DecodeRequest error %v, json.Unmarshal error %v", body, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\nDecodeRequest: %#v\njson.Unmarshal: %#v", body, got, want)
	}
	// The body's buffer is recycled: nothing decoded may refer to it.
	snapshot := cloneRequest(got)
	for i := range b {
		b[i] = 'x'
	}
	if !reflect.DeepEqual(got, snapshot) {
		t.Fatalf("body %q: DecodeRequest's result aliases the body", body)
	}
}

func cloneRequest(r graphql.Request) graphql.Request {
	r.Variables = bytes.Clone(r.Variables)
	r.Extensions = bytes.Clone(r.Extensions)
	return r
}

// prefilled is a request with every field set: Unmarshal leaves those the
// body does not mention as they were.
var prefilled = graphql.Request{
	Query:         "old query",
	OperationName: "OldOp",
	Variables:     json.RawMessage(`{"old":1}`),
	Extensions:    json.RawMessage(`[]`),
}

func TestDecodeRequest(t *testing.T) {
	for _, body := range decodeRequestBodies {
		checkDecodeRequest(t, []byte(body), graphql.Request{})
		checkDecodeRequest(t, []byte(body), prefilled)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, body := range decodeRequestBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecodeRequest(t, body, graphql.Request{})
		checkDecodeRequest(t, body, prefilled)
	})
}

// The common bodies are decoded without reflection: the only allocations
// are the copies of the query and the raw variables.
func TestDecodeRequest_Allocs(t *testing.T) {
	for _, tc := range []struct {
		body   string
		allocs float64
	}{
		{`{"query":"query { auth_info { tenant_id } }"}`, 1},
		{prefectBody, 2},
	} {
		body := []byte(tc.body)
		var req graphql.Request
		allocs := testing.AllocsPerRun(100, func() {
			req = graphql.Request{}
			if err := graphql.DecodeRequest(body, &req); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.allocs {
			t.Errorf("body %s: %v allocations, want at most %v", tc.body, allocs, tc.allocs)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(prefectBody)
	for _, bc := range []struct {
		name   string
		decode func([]byte, *graphql.Request) error
	}{
		{"DecodeRequest", graphql.DecodeRequest},
		{"json.Unmarshal", func(body []byte, req *graphql.Request) error { return json.Unmarshal(body, req) }},
		{"json.Valid", func(body []byte, _ *graphql.Request) error { // the fast path's first step
			if !json.Valid(body) {
				return errors.New("invalid")
			}
			return nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var req graphql.Request
			for b.Loop() {
				req = graphql.Request{}
				if err := bc.decode(body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
