package main_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

// BenchmarkHandler_Refused measures what a refused credential costs the
// server, through its whole HTTP handler: a mistyped key (bad checksum,
// refused without a lookup) and a well-formed unknown key (one indexed
// lookup), each with a 16 KiB body that a refused request never needs.
func BenchmarkHandler_Refused(b *testing.B) {
	s := MustRunMain(b, "sqlite")
	body := []byte(`{"query":"query { auth_info { user_id } }","variables":"` + strings.Repeat(" ", 16<<10) + `null"}`)
	unknown, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	if err != nil {
		b.Fatal(err)
	}
	typo := []byte(unknown)
	typo[20] ^= 1
	for _, c := range []struct{ name, credential string }{{"mistyped", string(typo)}, {"unknown", unknown}} {
		b.Run(c.name, func(b *testing.B) {
			h := s.HTTPServer.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.credential)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte("UNAUTHENTICATED")) {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
