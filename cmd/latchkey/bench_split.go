package main

// `latchkey bench --split-cores`: the load generator runs in a child
// process (this binary, re-executed) pinned to CPU 0, the servers in this
// process pinned to CPU 1, each with GOMAXPROCS 1, so that neither steals
// the other's core. The child reads what to do, credentials included, as
// JSON on its stdin (never argv or the environment, which ps shows) and
// writes its results as JSON on its stdout.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/latchkey/latchkey/bench"
)

// loadGenChildArg, as the only argument after `bench`, runs the load
// generator child of --split-cores.
const loadGenChildArg = "--load-generator-child"

// CPUs of --split-cores.
const (
	splitLoadGenCPU = 0
	splitServerCPU  = 1
)

// loadGenRequest is what the parent sends the load generator child.
type loadGenRequest struct {
	// CPU to pin the child to; negative: no pinning.
	CPU         int               `json:"cpu"`
	Concurrency int               `json:"concurrency"`
	Rate        float64           `json:"rate"`
	Client      string            `json:"client"`
	Warmup      time.Duration     `json:"warmup_ns"`
	Duration    time.Duration     `json:"duration_ns"`
	Rounds      int               `json:"rounds"`
	Scenarios   []loadGenScenario `json:"scenarios"`
}

// loadGenScenario is a scenario as data: a POST of Body to URL with a
// bearer credential picked from Credentials, and a check of the answer.
type loadGenScenario struct {
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Body        []byte   `json:"body"`
	Unique      string   `json:"unique,omitempty"` // see bench.Scenario.Unique
	Credentials []string `json:"credentials"`
	// CheckGraphQL names the field a GraphQL answer must hold; if empty,
	// the body must be CheckBody.
	CheckGraphQL string `json:"check_graphql,omitempty"`
	CheckBody    string `json:"check_body,omitempty"`
}

// loadGenResponse is what the child answers: Results[round][scenario].
type loadGenResponse struct {
	Results [][]*bench.Result `json:"results"`
	Error   string            `json:"error,omitempty"`
}

func (s loadGenScenario) scenario() bench.Scenario {
	sc := bench.Scenario{Name: s.Name, URL: s.URL, Body: s.Body, Unique: s.Unique, Credential: pick(s.Credentials)}
	if s.CheckGraphQL != "" {
		sc.Check = bench.CheckGraphQL(s.CheckGraphQL)
	} else {
		sc.Check = bench.CheckBody(s.CheckBody)
	}
	return sc
}

func (r *loadGenRequest) validate() error {
	switch {
	case r.Concurrency < 1 || r.Concurrency > 4096:
		return errors.New("concurrency must be 1 to 4096")
	case r.Rounds < 1 || r.Duration <= 0 || r.Warmup < 0 || r.Rate < 0:
		return errors.New("invalid rounds, duration, warm-up or rate")
	case len(r.Scenarios) == 0:
		return errors.New("no scenarios")
	}
	for _, s := range r.Scenarios {
		if len(s.Credentials) == 0 {
			return fmt.Errorf("scenario %q has no credentials", s.Name)
		}
	}
	return nil
}

// runLoadGenChild is the child: it reads a loadGenRequest on stdin, runs
// every round of every scenario and writes a loadGenResponse on stdout.
func runLoadGenChild(ctx context.Context, env *Env) int {
	var req loadGenRequest
	resp, err := func() (*loadGenResponse, error) {
		if err := json.NewDecoder(env.Stdin).Decode(&req); err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		if err := req.validate(); err != nil {
			return nil, err
		}
		if err := pinProcess(req.CPU); err != nil {
			return nil, err
		}
		client := benchClient(req.Client, req.Concurrency)
		opt := bench.Options{Concurrency: req.Concurrency, Warmup: req.Warmup, Duration: req.Duration, Rate: req.Rate}
		resp := &loadGenResponse{}
		for round := 1; round <= req.Rounds; round++ {
			var rs []*bench.Result
			for _, s := range req.Scenarios {
				r, err := bench.Run(ctx, client, s.scenario(), opt)
				if err != nil {
					return nil, err
				}
				rs = append(rs, r)
				fmt.Fprintf(env.Stderr, "bench: round %d: %-24s %8.0f req/s  p50 %s  p99 %s  errors %d\n", round, s.Name, r.RPS(), bench.FormatDuration(r.P50), bench.FormatDuration(r.P99), r.Errors)
			}
			resp.Results = append(resp.Results, rs)
		}
		return resp, nil
	}()
	if err != nil {
		resp = &loadGenResponse{Error: err.Error()}
	}
	if err := json.NewEncoder(env.Stdout).Encode(resp); err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	if resp.Error != "" {
		return 1
	}
	return 0
}

// runSplit pins this process (the servers) to one CPU and runs req in a
// child load generator pinned to the other; it returns Results[round][scenario].
func runSplit(ctx context.Context, req *loadGenRequest, stderr io.Writer) ([][]*bench.Result, error) {
	if runtime.NumCPU() < 2 {
		return nil, errors.New("--split-cores needs at least 2 CPUs")
	}
	if err := pinProcess(splitServerCPU); err != nil {
		return nil, err
	}
	runtime.GOMAXPROCS(1)
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--split-cores: %w", err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", loadGenChildArg)
	// The child gets Go's default GC settings: GOGC and GOMEMLIMIT apply to the servers only.
	cmd.Env = append(withoutEnv(withoutEnv(withoutEnv(os.Environ(), "GOMAXPROCS"), "GOGC"), "GOMEMLIMIT"), "GOMAXPROCS=1")
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	runErr := cmd.Run()
	var resp loadGenResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("load generator: %w", runErr)
		}
		return nil, fmt.Errorf("load generator: bad answer: %w", err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("load generator: %s", resp.Error)
	} else if runErr != nil {
		return nil, fmt.Errorf("load generator: %w", runErr)
	}
	if len(resp.Results) != req.Rounds {
		return nil, fmt.Errorf("load generator: %d rounds, want %d", len(resp.Results), req.Rounds)
	}
	for _, rs := range resp.Results {
		if len(rs) != len(req.Scenarios) {
			return nil, fmt.Errorf("load generator: %d scenarios, want %d", len(rs), len(req.Scenarios))
		}
	}
	return resp.Results, nil
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
