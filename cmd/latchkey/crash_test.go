package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// The crash test runs the real binary, kills it with SIGKILL while
// clients create and revoke keys, restarts it on the same database and
// checks that every acknowledged operation survived and that nothing is
// half-written.

// mustBuildLatchkey builds the latchkey binary into a temporary directory
// of t.
func mustBuildLatchkey(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the binary with: %v", err)
	}
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crashServer is a latchkey server child process.
type crashServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCrashServer starts `latchkey server` on dsn, waits until it says
// it is listening and checks that it answers /healthz. On a fresh database
// it returns the bootstrap key read from its stdout.
func startCrashServer(t *testing.T, bin, dsn string, fresh bool) (*crashServer, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := &crashServer{t: t, url: "http://" + addr, stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan struct{})}
	// The check after the restart tries every revoked key from one
	// address: no failed-authentication limit.
	s.cmd = exec.Command(bin, "server", "--addr", addr, "--db", dsn, "--log-level", "debug", "--failed-auth-per-addr", "0", "--failed-auth-per-key", "0")
	s.cmd.Env = append(os.Environ(), "LATCHKEY_ADDR=", "LATCHKEY_DB=", "LATCHKEY_SYSTEM_SECRET_FILE=", "LATCHKEY_SYSTEM_SECRETS=")
	if latchkeytest.IsPostgres(dsn) {
		s.cmd.Env = append(s.cmd.Env, "LATCHKEY_SYSTEM_SECRETS="+latchkeytest.SystemSecret)
	}
	s.cmd.Stderr = s.stderr
	pr, pw := io.Pipe()
	s.cmd.Stdout = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	t.Cleanup(s.kill)

	keyCh, listening := make(chan string, 1), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		next := false
		for sc.Scan() {
			line := sc.Text()
			s.stdout.Write([]byte(line + "\n"))
			if next {
				keyCh <- strings.TrimSpace(line)
				next = false
			}
			next = strings.HasPrefix(line, "Admin API key")
			if strings.HasPrefix(line, "Latchkey is listening on ") {
				close(listening)
			}
		}
	}()
	var key string
	if fresh {
		select {
		case key = <-keyCh:
		case <-s.done:
			t.Fatalf("server exited: %s", s.stderr)
		case <-time.After(90 * time.Second):
			t.Fatalf("no bootstrap key; stdout %q, stderr %s", s.stdout, s.stderr)
		}
	}
	// It says so once it serves.
	select {
	case <-listening:
	case <-s.done:
		t.Fatalf("server exited: %s", s.stderr)
	case <-time.After(90 * time.Second):
		t.Fatalf("server not listening; stdout %q, stderr %s", s.stdout, s.stderr)
	}
	resp, err := http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("server not healthy: %v\n%s", err, s.stderr)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("server not healthy: %s\n%s", resp.Status, s.stderr)
	}
	return s, key
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *crashServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// crashResult is what a client learned about one operation.
type crashResult int

const (
	crashAcked   crashResult = iota + 1 // answered with success
	crashRefused                        // answered with an error: must not have happened
	crashUnknown                        // no answer (connection lost)
)

// crashKey is a key the clients asked for.
type crashKey struct {
	name   string
	create crashResult
	id     string // set when the create was acknowledged
	secret string
	revoke crashResult // 0: never asked
}

// crashDo posts a GraphQL request. It returns the decoded data field, or
// an error string from GraphQL, or ok=false when no answer came.
func crashDo(client *http.Client, url, cred, query string, vars any, field string) (data json.RawMessage, gqlErr string, answered bool) {
	vb, _ := json.Marshal(vars)
	body, _ := json.Marshal(map[string]any{"query": query, "variables": string(vb)})
	req, _ := http.NewRequest("POST", url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", false
	}
	var r struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []struct{ Message string } `json:"errors"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return nil, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, raw), true
	}
	if len(r.Errors) > 0 {
		return nil, r.Errors[0].Message, true
	}
	return r.Data[field], "", true
}

// churn runs clients that create keys and revoke about half of them, until
// stop is closed or their connection dies, and returns every key asked for.
// It calls acked after each acknowledged operation, from the clients'
// goroutines.
func churn(t *testing.T, url, adminKey, prefix string, clients int, stop <-chan struct{}, acked func()) []*crashKey {
	var mu sync.Mutex
	var keys []*crashKey
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := &crashKey{name: fmt.Sprintf("%s-%d-%d", prefix, g, i)}
				mu.Lock()
				keys = append(keys, k)
				mu.Unlock()
				data, gqlErr, answered := crashDo(client, url, adminKey, qAZCreateKey, map[string]any{"input": map[string]any{"name": k.name}}, "create_api_key")
				var out struct{ ID, Key string }
				switch {
				case !answered:
					k.create = crashUnknown
					return
				case gqlErr != "" || json.Unmarshal(data, &out) != nil || out.ID == "":
					k.create = crashRefused
					t.Logf("create %s refused: %s", k.name, gqlErr)
					continue
				}
				k.create, k.id, k.secret = crashAcked, out.ID, out.Key
				acked()
				if i%2 == 1 {
					continue
				}
				data, gqlErr, answered = crashDo(client, url, adminKey, qAZDeleteKey, map[string]any{"input": map[string]any{"key_id": k.id}}, "delete_api_key")
				var del struct{ Success bool }
				switch {
				case !answered:
					k.revoke = crashUnknown
					return
				case gqlErr != "" || json.Unmarshal(data, &del) != nil || !del.Success:
					k.revoke = crashRefused
					t.Logf("revoke %s refused: %s %s", k.name, gqlErr, data)
				default:
					k.revoke = crashAcked
					acked()
				}
			}
		}()
	}
	wg.Wait()
	return keys
}

// checkAfterCrash checks the keys against the restarted server.
func checkAfterCrash(t *testing.T, url, adminKey string, keys []*crashKey) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	type listedKey struct {
		ID, Name        string
		UserID          string `json:"user_id"`
		DefaultTenantID string `json:"default_tenant_id"`
		CreatedAt       string `json:"created_at"`
		CreatedByUserID string `json:"created_by_user_id"`
	}
	var listed []listedKey
	for { // pages of at most 1000 keys (the API's maximum limit)
		data, gqlErr, _ := crashDo(client, url, adminKey, `query($offset: Int) { auth_api_key(limit: 1000, offset: $offset) { id name user_id default_tenant_id created_at created_by_user_id } }`,
			map[string]any{"offset": len(listed)}, "auth_api_key")
		if gqlErr != "" {
			t.Fatalf("list keys: %s", gqlErr)
		}
		var page []listedKey
		if err := json.Unmarshal(data, &page); err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if len(page) < 1000 {
			break
		}
	}
	byName := map[string]int{}
	for i, l := range listed {
		if _, dup := byName[l.Name]; dup {
			t.Errorf("key name %s listed twice", l.Name)
		}
		byName[l.Name] = i
		if l.ID == "" || l.UserID == "" || l.DefaultTenantID == "" || l.CreatedAt == "" || l.CreatedByUserID != l.UserID {
			t.Errorf("half-written key row: %+v", l)
		}
	}
	works := func(secret string) bool {
		_, gqlErr, answered := crashDo(client, url, secret, qAuthInfoTenant, nil, "auth_info")
		if !answered {
			t.Fatal("server gone")
		}
		return gqlErr == ""
	}
	known := map[string]bool{}
	counts := map[string]int{}
	for _, k := range keys {
		known[k.name] = true
		i, isListed := byName[k.name]
		switch {
		case k.create == crashRefused:
			counts["create refused"]++
			if isListed {
				t.Errorf("%s: the create was refused but the key exists", k.name)
			}
		case k.create == crashUnknown:
			counts["create unanswered"]++
			// Its text was never seen: listed (whole) or absent are both fine.
		case k.revoke == crashAcked:
			counts["revoke acknowledged"]++
			if isListed || works(k.secret) {
				t.Errorf("%s: revoke acknowledged, but listed=%v or the key still works", k.name, isListed)
			}
		case k.revoke == crashUnknown:
			counts["revoke unanswered"]++
			if w := works(k.secret); w != isListed {
				t.Errorf("%s: revoke unanswered: listed=%v but works=%v (half-revoked)", k.name, isListed, w)
			}
		default:
			counts["create acknowledged"]++
			if !isListed || listed[i].ID != k.id || !works(k.secret) {
				t.Errorf("%s: create acknowledged, but listed=%v (id %s) or the key does not work", k.name, isListed, k.id)
			}
		}
	}
	for _, l := range listed {
		if !known[l.Name] && l.Name != "bootstrap admin key" {
			t.Errorf("unexpected key %+v", l)
		}
	}
	t.Logf("keys: %v", counts)
	if counts["create acknowledged"]+counts["revoke acknowledged"] < 10 {
		t.Errorf("too few acknowledged operations to mean anything: %v", counts)
	}
}

func TestCrash_KillDuringKeyChurn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills the server binary")
	}
	bin := mustBuildLatchkey(t)
	eachEngine(t, func(t *testing.T, engine string) {
		dsn := latchkeytest.MustDSN(t, engine)
		srv, adminKey := startCrashServer(t, bin, dsn, true)
		if _, err := latchkey.ParseSecret(adminKey); err != nil {
			t.Fatalf("bootstrap key %q: %v", adminKey, err)
		}
		var all []*crashKey
		var logs []string
		for round := range 2 {
			stop := make(chan struct{})
			var keys []*crashKey
			done := make(chan struct{})
			// The kill comes once this round's clients have had 100
			// operations acknowledged.
			enough := make(chan struct{})
			var n atomic.Int32
			go func() {
				keys = churn(t, srv.url, adminKey, fmt.Sprintf("crash-r%d", round), 4, stop, func() {
					if n.Add(1) == 100 {
						close(enough)
					}
				})
				close(done)
			}()
			select {
			case <-enough:
			case <-done:
				t.Fatalf("the clients stopped after %d acknowledged operations, before the kill\n%s", n.Load(), srv.stderr)
			case <-time.After(90 * time.Second):
				t.Fatalf("%d acknowledged operations in 90 s\n%s", n.Load(), srv.stderr)
			}
			srv.kill() // mid-flight: the clients are still sending
			close(stop)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("clients did not stop")
			}
			logs = append(logs, srv.stderr.String())
			all = append(all, keys...)

			srv, _ = startCrashServer(t, bin, dsn, false)
			checkAfterCrash(t, srv.url, adminKey, all)
		}
		logs = append(logs, srv.stderr.String())
		srv.kill()

		if strings.HasPrefix(dsn, "sqlite:") {
			mustIntegrityCheck(t, strings.TrimPrefix(dsn, "sqlite:"))
		}
		// The logs of every run hold no key text.
		for _, k := range all {
			for _, l := range logs {
				if k.secret != "" && strings.Contains(l, k.secret[4:]) {
					t.Errorf("key %s in the server log", k.name)
				}
			}
		}
		if strings.Contains(strings.Join(logs, ""), adminKey[4:]) {
			t.Error("the admin key is in the server log")
		}
	})
}

// mustIntegrityCheck runs SQLite's integrity and foreign key checks on the
// database file.
func mustIntegrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Fatalf("integrity_check: %s", result)
	}
	rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("foreign_key_check found violations")
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
}
