package graphql_test

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/latchkey/latchkey/graphql"
)

// BenchmarkReadBody measures decoding ordinary request bodies into
// parameters (variables included), reusing the decoder as the handler does.
func BenchmarkReadBody(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"prefect null variables", prefectBody},
		{"variables string", `{"query":"query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } }","variables":"{\"slug\": \"tenant-two\", \"n\": 12}"}`},
		{"variables object", `{"query":"query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } }","variables":{"slug": "tenant-two", "n": 12}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			body := []byte(bc.body)
			dec := jsontext.NewDecoder(bytes.NewBuffer(nil))
			lim := graphql.NewLimits(false)
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				buf.Write(body)
				if _, err := graphql.DecodeRequestWith(dec, &buf, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
