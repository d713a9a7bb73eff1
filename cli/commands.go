package cli

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/client"
)

const (
	groupPath  = "latchkey auth"
	groupUsage = "[OPTIONS] COMMAND [ARGS]..."
)

// option is a Click option.
type option struct {
	long, short string
	help        string
	flag        bool // is_flag: takes no value
	required    bool
	hidden      bool
}

// command is a Click command: its docstring (already cleaned, as
// inspect.getdoc returns it, with "\b" marking no-rewrap blocks), options
// and implementation.
type command struct {
	name    string
	help    string
	options []option
	run     func(r *runner, o optionValues) error
}

// commands lists the subcommands. Help texts are Prefect's docstrings and
// option help (0.15.13 where it differs from 1.0.0, for the token
// commands), with `latchkey` for `prefect` in command examples.
func commands() []*command {
	return []*command{
		{
			name: "login",
			help: `Login to Prefect Cloud

Create an API key in the UI then login with it here:

    $ latchkey auth login -k YOUR-KEY

You will be switched to the default tenant associated with the key. After login,
your available tenants can be seen with ` + "`latchkey auth list-tenants`" + ` and you can
change the default tenant on this machine using ` + "`latchkey auth switch-tenants`" + `.

The given key will be stored on disk for later access. Prefect will default to using
this key for all interaction with the API but frequently overrides can be passed to
individual commands or functions. To remove your key from disk, see
` + "`latchkey auth logout`" + `.

This command has backwards compatibility support for API tokens, which are a
deprecated form of authentication with Prefect Cloud`,
			options: []option{
				{long: "key", short: "k", help: "A Prefect Cloud API key."},
				{long: "token", short: "t", help: "A Prefect Cloud API token. DEPRECATED."},
			},
			run: runLogin,
		},
		{
			name: "logout",
			help: `Log out of Prefect Cloud

This will remove your cached authentication from disk.`,
			options: []option{
				{long: "token", short: "t", flag: true, help: "Log out from the API token based authentication, ignoring API keys"},
				{long: "yes", short: "y", flag: true, help: "Do not ask for confirmation (for scripts)."},
			},
			run: runLogout,
		},
		{
			name:    "list-tenants",
			help:    `List available tenants`,
			options: []option{{long: "json", flag: true, help: "Print one JSON document on stdout (see docs/cli.md)."}},
			run:     runListTenants,
		},
		{
			name: "switch-tenants",
			help: `Switch active tenant

\b
Options:
    --id, -i    TEXT    A Prefect Cloud tenant id
    --slug, -s  TEXT    A Prefect Cloud tenant slug`,
			options: []option{
				{long: "id", short: "i", help: "A Prefect Cloud tenant id.", hidden: true},
				{long: "slug", short: "s", help: "A Prefect Cloud tenant slug.", hidden: true},
				{long: "default", short: "d", flag: true, help: "Switch to the default tenant for your API key"},
			},
			run: runSwitchTenants,
		},
		{
			name: "create-key",
			help: `Create a Prefect Cloud API key for authentication with your current user`,
			options: []option{
				{long: "name", short: "n", required: true, help: "A name to associate with the key"},
				{long: "expire", short: "e", help: "A optional dateutil parsable time to at. If not given, the key will never expire."},
				{long: "quiet", short: "q", flag: true, help: "If set, only display the created key."},
				{long: "json", flag: true, help: "Print one JSON document on stdout (see docs/cli.md)."},
			},
			run: runCreateKey,
		},
		{
			name: "list-keys",
			help: `List Prefect Cloud API keys

If you are a tenant admin, this should list all service account keys as well as keys
you have created.`,
			options: []option{{long: "json", flag: true, help: "Print one JSON document on stdout (see docs/cli.md)."}},
			run:     runListKeys,
		},
		{
			name: "revoke-key",
			help: `Revoke a Prefect Cloud API key.`,
			options: []option{
				{long: "id", short: "i", required: true, help: "The UUID for the API key to delete, or the key's name (if no other key has it) or identifier (e.g. lku_…x9Qz)."},
			},
			run: runRevokeKey,
		},
		{
			name: "rotate-key",
			help: `Roll a Prefect Cloud API key without an outage

Creates a new key with the same owner and name, shown once, and makes the
old key stop working after a grace period. Update whatever uses the old key
(for an agent: its config, then send it SIGHUP) before the period ends.

\b
Example: replace an agent's key, keeping the old one for an hour
    $ latchkey auth rotate-key -i KEY-ID --grace 1h`,
			options: []option{
				{long: "id", short: "i", required: true, help: "The UUID for the API key to roll."},
				{long: "grace", short: "g", help: "How long the old key keeps working, as a duration like 1h or 30m (at most 720h). 0, the default, stops it now."},
				{long: "quiet", short: "q", flag: true, help: "If set, only display the new key."},
			},
			run: runRotateKey,
		},
		{
			name: "status",
			help: `Get the current Prefect authentication status

With an API key, the server is asked whether the key still works, and for the
tenant, user and key it belongs to.`,
			options: []option{{long: "json", flag: true, help: "Print one JSON document on stdout (see docs/cli.md)."}},
			run:     runStatus,
		},
		{
			name: "create-token",
			help: `DEPRECATED. Please use API keys instead.

Create a Prefect Cloud API token.

For more info on API tokens visit https://docs.prefect.io/orchestration/concepts/api.html

\b
Options:
    --name, -n      TEXT    A name to give the generated token
    --scope, -s     TEXT    A scope for the token`,
			options: []option{
				{long: "name", short: "n", required: true, hidden: true, help: "A token name."},
				{long: "scope", short: "s", required: true, hidden: true, help: "A token scopre."},
			},
			run: runCreateToken,
		},
		{
			name: "list-tokens",
			help: `DEPRECATED. Please use API keys instead.

List your available Prefect Cloud API tokens.`,
			options: []option{{long: "json", flag: true, help: "Print one JSON document on stdout (see docs/cli.md)."}},
			run:     runListTokens,
		},
		{
			name: "revoke-token",
			help: `DEPRECATED. Please use API keys instead.

Revote a Prefect Cloud API token

\b
Options:
    --id, -i    TEXT    The id of a token to revoke`,
			options: []option{
				{long: "id", short: "i", required: true, hidden: true, help: "A token ID."},
			},
			run: runRevokeToken,
		},
	}
}

// groupHelpText is the auth group's docstring (0.15.13, which lists the
// token commands too). Click prints its "\bExamples:" lines with a literal
// backspace; here the stray markers are dropped.
const groupHelpText = `Handle Prefect Cloud authorization.

\b
Usage:
    $ latchkey auth [COMMAND]

\b
Commands:
    login           Log in to Prefect Cloud
    logout          Log out of Prefect Cloud
    list-tenants    List your available tenants
    switch-tenants  Switch to a different tenant
    create-key      Create an API key
    list-keys       List details of existing API keys
    revoke-key      Delete an API key from the backend
    rotate-key      Replace an API key, keeping the old one for a while
    create-token    Create an API token (DEPRECATED)
    list-tokens     List the names and ids of existing API tokens (DEPRECATED)
    revoke-token    Delete an API token from the backend (DEPRECATED)

Examples:

  Log in using an existing key

    $ latchkey auth login --key MY_KEY

  Log out, removing your current key or token

    $ latchkey auth logout

  Switch to another tenant by slug

    $ latchkey auth switch-tenants --slug test-person

  Create a new API key that expires at the start of the next year

    $ latchkey auth create-key -n marvin --expire 2022-1-1`

// docstring turns the `\b` markers of a help text into Click's "\b".
func docstring(s string) string { return strings.ReplaceAll(s, `\b`, noWrap) }

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// commandHelp renders `latchkey auth NAME --help`.
func (r *runner) commandHelp(c *command) string {
	f := &formatter{width: r.width}
	f.writeUsage(groupPath+" "+c.name, "[OPTIONS]")
	f.writeParagraph()
	f.indent += 2
	f.writeText(docstring(c.help))
	f.indent -= 2
	var rows [][2]string
	for _, o := range c.options {
		if o.hidden {
			continue
		}
		first := "--" + o.long
		if o.short != "" {
			first = "-" + o.short + ", " + first
		}
		if !o.flag {
			first += " TEXT"
		}
		help := o.help
		if o.required {
			help += "  [required]"
		}
		rows = append(rows, [2]string{first, help})
	}
	rows = append(rows, [2]string{"-h, --help", "Show this message and exit."})
	f.section("Options", func() { f.writeDL(rows) })
	return f.String()
}

// groupHelp renders `latchkey auth --help`. Unlike Prefect, whose auth
// commands are all hidden, the Commands section lists them.
func (r *runner) groupHelp() string {
	f := &formatter{width: r.width}
	f.writeUsage(groupPath, groupUsage)
	f.writeParagraph()
	f.indent += 2
	f.writeText(docstring(groupHelpText))
	f.indent -= 2
	f.section("Options", func() { f.writeDL([][2]string{{"-h, --help", "Show this message and exit."}}) })
	cmds := commands()
	slices.SortFunc(cmds, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	longest := 0
	for _, c := range cmds {
		longest = max(longest, len(c.name))
	}
	limit := f.width - 6 - longest
	var rows [][2]string
	for _, c := range cmds {
		rows = append(rows, [2]string{c.name, strings.TrimSpace(shortHelp(docstring(c.help), limit))})
	}
	f.section("Commands", func() { f.writeDL(rows) })
	return f.String()
}

// pyRepr is Python's repr of a string: 'x'.
func pyRepr(s string) string {
	b, _ := json.Marshal(s)
	return client.PythonRepr(b)
}
