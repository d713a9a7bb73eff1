package client

import (
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Env is what a latchkey command reads from or writes to the outside
// world: cmd/latchkey fills it from the process, tests substitute it. It
// lives here because the commands that talk to an API as a client, `auth`
// and `agent`, read their configuration through it (see LoadConfig). The
// zero value is usable: see WithDefaults.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Getenv reads environment variables (PREFECT__CLOUD__API_KEY, …).
	Getenv func(string) string

	// HomeDir is the user's home directory, for "~" in paths
	// (~/.prefect/config.toml).
	HomeDir string

	// Now is the clock.
	Now func() time.Time

	// HTTPClient sends requests to the API; nil means one with
	// DefaultTimeout.
	HTTPClient *http.Client

	// IsTerminal and StderrIsTerminal tell whether Stdout and Stderr are
	// terminals; only then does `auth` colour its messages, as Click does.
	IsTerminal       bool
	StderrIsTerminal bool

	// The agent's: Environ is the base environment of the processes it
	// starts (nil means os.Environ()); Hostname names the host for its
	// default label (nil means os.Hostname); Reload asks a running agent to
	// read its key again (nil means on SIGHUP).
	Environ  []string
	Hostname func() (string, error)
	Reload   <-chan struct{}
}

// WithDefaults returns a copy of e (of the zero Env if e is nil) with its
// unset fields filled in: no input, discarded output, an empty
// environment, the home directory from $HOME (else "/") and the real
// clock. HTTPClient, Environ, Hostname and Reload keep their meaning of
// nil.
func (e *Env) WithDefaults() *Env {
	c := Env{}
	if e != nil {
		c = *e
	}
	if c.Stdin == nil {
		c.Stdin = strings.NewReader("")
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.HomeDir == "" {
		c.HomeDir = c.Getenv("HOME")
	}
	if c.HomeDir == "" {
		c.HomeDir = string(os.PathSeparator)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &c
}
