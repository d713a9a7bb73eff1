package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// mustSigningKeyFile writes priv as PKCS #8 PEM to a new file with mode.
func mustSigningKeyFile(t *testing.T, priv any, mode os.FileMode) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // exactly mode, whatever the umask
		t.Fatal(err)
	}
	return path
}

func mustEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// jwksKeys returns kid → public key of the server's JWKS.
func jwksKeys(t *testing.T, s *TestServer) map[string]ed25519.PublicKey {
	t.Helper()
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, X string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil {
			t.Fatal(err)
		}
		out[k.Kid] = x
	}
	return out
}

// mustMintJWT returns an access token from the server, its kid, and
// whether pub verifies its signature.
func mustMintJWT(t *testing.T, s *TestServer, key string, pub ed25519.PublicKey) (tok, kid string, signedByPub bool) {
	t.Helper()
	var pair tokenPair
	s.MustDo(t, key, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": nil}}, "switch_tenant", &pair)
	tok = pair.AccessToken
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct{ Kid string }
	_ = json.Unmarshal(hdr, &h)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	return tok, h.Kid, ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig)
}

func TestServer_SigningKeyFile(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		dsn := latchkeytest.MustDSN(t, engine)
		priv := mustEd25519(t)
		pub := priv.Public().(ed25519.PublicKey)
		path := mustSigningKeyFile(t, priv, 0o600)

		s := MustRunMainDSN(t, dsn, func(m *main.Main) { m.SigningKeyFile = path })
		tok, kid, ok := mustMintJWT(t, s, s.AdminKey, pub)
		if !ok {
			t.Fatal("access token not signed with the key from the file")
		}
		if keys := jwksKeys(t, s); len(keys) != 1 || !keys[kid].Equal(pub) {
			t.Fatalf("JWKS %v, want only %s", keys, kid)
		}
		s.MustDo(t, tok, "", qAuthInfoTenant, nil, "auth_info", nil)
		if strings.Contains(s.Logs.String(), base64.RawURLEncoding.EncodeToString(priv.Seed())) {
			t.Fatal("private key in the logs")
		}
		adminKey := s.AdminKey
		s.Close()

		// A restart with the same file keeps the same key id.
		s = MustRunMainDSN(t, dsn, func(m *main.Main) { m.SigningKeyFile = path })
		if _, kid2, ok := mustMintJWT(t, s, adminKey, pub); !ok || kid2 != kid {
			t.Fatalf("after restart: kid %s (want %s), signed by file key %v", kid2, kid, ok)
		}
		s.MustDo(t, tok, "", qAuthInfoTenant, nil, "auth_info", nil)
		s.Close()

		// A new file replaces the key; tokens signed with the old one
		// still verify until they expire.
		priv2 := mustEd25519(t)
		s = MustRunMainDSN(t, dsn, func(m *main.Main) { m.SigningKeyFile = mustSigningKeyFile(t, priv2, 0o400) })
		if _, kid3, ok := mustMintJWT(t, s, adminKey, priv2.Public().(ed25519.PublicKey)); !ok || kid3 == kid {
			t.Fatalf("new file: kid %s, signed by the new key %v", kid3, ok)
		}
		s.MustDo(t, tok, "", qAuthInfoTenant, nil, "auth_info", nil)
		if keys := jwksKeys(t, s); len(keys) != 2 || !keys[kid].Equal(pub) {
			t.Fatalf("JWKS after replacing the file: %v", keys)
		}
	})
}

// runServerArgs runs `latchkey server args...` and returns its exit code
// and stderr. A server that starts is stopped once it listens.
func runServerArgs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runServerEnv(t, nil, args...)
}

// runServerEnv is runServerArgs in the environment env.
func runServerEnv(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // migrations may wait for other tests' advisory lock
	defer cancel()
	var stdout, stderr syncBuffer
	code := main.Run(ctx, append([]string{"server", "--addr", "127.0.0.1:0"}, args...), &main.Env{
		Stdout: &stdout, Stderr: &whenWritten{w: &stderr, want: "latchkey listening", then: cancel}, Getenv: func(k string) string { return env[k] }, Now: time.Now,
	})
	return code, stderr.String()
}

// whenWritten writes to w, and calls then once everything written so far
// contains want.
type whenWritten struct {
	w    *syncBuffer
	want string
	then func()
	once sync.Once
}

func (ww *whenWritten) Write(p []byte) (int, error) {
	n, err := ww.w.Write(p)
	if strings.Contains(ww.w.String(), ww.want) {
		ww.once.Do(ww.then)
	}
	return n, err
}

func TestServer_SigningKeyFileRefused(t *testing.T) {
	t.Parallel()
	priv := mustEd25519(t)
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602, 0o610, 0o601, 0o666, 0o777} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "latchkey.db")
			path := mustSigningKeyFile(t, priv, mode)
			code, stderr := runServerArgs(t, "--db", db, "--signing-key-file", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr)
			}
			for _, want := range []string{path, fmt.Sprintf("mode %04o", mode), "chmod 600 " + path} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q: %s", want, stderr)
				}
			}
			if strings.Contains(stderr, seed) || strings.Contains(stderr, "PRIVATE KEY") {
				t.Errorf("stderr shows the key: %s", stderr)
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("the database was created: the server started before checking the file")
			}
		})
	}

	// Owner-only modes start (and stop when the context ends).
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		t.Run(fmt.Sprintf("%04o starts", mode), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "latchkey.db")
			if code, stderr := runServerArgs(t, "--db", db, "--signing-key-file", mustSigningKeyFile(t, priv, mode)); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if _, err := os.Stat(db); err != nil {
				t.Fatal("server did not open its database")
			}
		})
	}
}

func TestServer_SigningKeyFileInvalid(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPKCS8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")})
	for name, tc := range map[string]struct{ path, want string }{
		"missing":     {filepath.Join(dir, "nope.pem"), "no such file"},
		"directory":   {dir, "not a regular file"},
		"not PEM":     {write("raw.txt", "just text"), `holds no PEM "PRIVATE KEY" block`},
		"other type":  {write("rsa.pem", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), `holds no PEM "PRIVATE KEY" block`},
		"not PKCS #8": {write("bad.pem", string(notPKCS8)), "is not a PKCS #8 private key"},
		"not Ed25519": {mustSigningKeyFile(t, ec, 0o600), "not an Ed25519 key"},
		"empty":       {write("empty.pem", ""), `holds no PEM "PRIVATE KEY" block`},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "directory" {
				if err := os.Chmod(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			_, err := main.ReadSigningKeyFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			code, stderr := runServerArgs(t, "--db", filepath.Join(t.TempDir(), "x.db"), "--signing-key-file", tc.path)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d: %s", code, stderr)
			}
		})
	}
}
