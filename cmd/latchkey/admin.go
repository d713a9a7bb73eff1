package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/jwt"
	"github.com/latchkey/latchkey/sqldb"
)

const adminUsage = `Usage: latchkey admin COMMAND [OPTIONS]

Administer a Latchkey database in-process (no running server or API key needed).

Commands:
  init                 Create a tenant, its admin user and the admin's API key
  rotate-signing-key   Sign new access tokens with a fresh Ed25519 key
  password-link        Print a one-time link with which a user sets a web UI password

Run 'latchkey admin COMMAND --help' for a command's options.

Every command opens the database with the system secret the server uses:
--system-secret-file (or LATCHKEY_SYSTEM_SECRET_FILE), else
LATCHKEY_SYSTEM_SECRETS, else, with SQLite only, the file DB.secret beside the
database.
`

// adminContext marks ctx as an operator command for the audit log: the
// events it writes have no actor and come from "local".
func adminContext(ctx context.Context, command string) context.Context {
	return latchkey.NewContextWithClientInfo(ctx, latchkey.ClientInfo{Addr: "local", UserAgent: "latchkey admin " + command})
}

func runAdmin(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, adminUsage)
		return 2
	}
	switch args[0] {
	case "init":
		return runAdminInit(adminContext(ctx, args[0]), args[1:], env)
	case "rotate-signing-key":
		return runAdminRotate(adminContext(ctx, args[0]), args[1:], env)
	case "password-link":
		return runAdminPasswordLink(adminContext(ctx, args[0]), args[1:], env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, adminUsage)
		return 0
	}
	fmt.Fprintf(env.Stderr, "latchkey admin: unknown command %q.%s\n\n%s", args[0], didYouMean(args[0], []string{"init", "rotate-signing-key", "password-link"}), adminUsage)
	return 2
}

func dbFlag(fs *flag.FlagSet, env *Env) *string {
	def := DefaultDSN
	if v := env.Getenv("LATCHKEY_DB"); v != "" {
		def = v
	}
	return fs.String("db", def, "SQLite `file` or postgres:// URL (env LATCHKEY_DB)")
}

// dbFlags are the flags every admin command has: the database and its
// system secret.
type dbFlags struct {
	dsn, secretFile *string
}

func newDBFlags(fs *flag.FlagSet, env *Env) dbFlags {
	return dbFlags{dsn: dbFlag(fs, env), secretFile: fs.String("system-secret-file", env.Getenv(envSystemSecretFile), systemSecretFileUsage)}
}

// noDatabase is the error for a --db that names no Latchkey database;
// msg is "No Latchkey database at WHERE." (sqldb.DB.MustExist's message).
func noDatabase(msg string) error {
	return errors.New(strings.TrimSuffix(msg, ".") + ": check --db (or LATCHKEY_DB); `latchkey server` or `latchkey admin init` creates one.")
}

// openDB opens the database with the system secret the server uses (see
// systemSecrets). Unless create is set (only `admin init` may), a
// database that does not exist yet is refused, not created: a mistyped
// --db then says so, and leaves no new file (nor secret file) behind.
func openDB(ctx context.Context, f dbFlags, env *Env, create bool) (*sqldb.DB, error) {
	if !create && dbKind(*f.dsn) != "postgres" {
		// Checked before the system secret, which on SQLite is a file
		// beside the database that would otherwise be created.
		if _, err := os.Stat(sqlitePath(*f.dsn)); errors.Is(err, fs.ErrNotExist) {
			return nil, noDatabase("No Latchkey database at " + sqlitePath(*f.dsn) + ".")
		}
	}
	secrets, source, err := systemSecrets(*f.dsn, *f.secretFile, splitSystemSecrets(env.Getenv(envSystemSecrets)))
	if err != nil {
		return nil, err
	}
	db := sqldb.NewDB(*f.dsn)
	db.Now, db.Secrets = env.Now, secrets
	db.Logger = newLogger(env.Stderr, "text", slog.LevelWarn)
	db.MustExist = !create
	if err := db.Open(ctx); latchkey.ErrorCode(err) == latchkey.ENOTFOUND {
		return nil, noDatabase(latchkey.ErrorMessage(err))
	} else if err != nil {
		return nil, secretMismatchHint(err, source)
	}
	return db, nil
}

func runAdminInit(ctx context.Context, args []string, env *Env) int {
	fs := flag.NewFlagSet("latchkey admin init", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dbf := newDBFlags(fs, env)
	email := fs.String("email", "", "the admin's `email` (required)")
	tenant := fs.String("tenant", "", "the tenant's `name` (required)")
	slug := fs.String("slug", "", "the tenant's `slug` (default: derived from the name)")
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "print only the API key")
	fs.BoolVar(&quiet, "quiet", false, "print only the API key")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey admin init --email EMAIL --tenant NAME [--slug SLUG] [-q]\n\n"+
			"Create a tenant and make EMAIL its TENANT_ADMIN (creating the user if needed),\n"+
			"then create and print an API key for that admin. The key is shown only once.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if *email == "" || *tenant == "" || fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "Error: --email and --tenant are required.\n")
		fs.Usage()
		return 2
	}
	db, err := openDB(ctx, dbf, env, true)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	defer db.Close()
	res, err := sqldb.NewBootstrapService(db).Bootstrap(ctx, latchkey.BootstrapInput{
		Email: *email, TenantName: *tenant, TenantSlug: *slug,
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", latchkey.ErrorMessage(err))
		return 1
	}
	if quiet {
		fmt.Fprintln(env.Stdout, res.Secret)
		return 0
	}
	fmt.Fprintf(env.Stdout, "Created tenant %q (%s) with admin %s.\n", res.Tenant.Name, res.Tenant.Slug, res.User.Email)
	fmt.Fprintf(env.Stdout, "API key for %s (shown only this once; store it somewhere safe):\n%s\n", res.User.Email, res.Secret)
	return 0
}

func runAdminRotate(ctx context.Context, args []string, env *Env) int {
	fs := flag.NewFlagSet("latchkey admin rotate-signing-key", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dbf := newDBFlags(fs, env)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey admin rotate-signing-key [--db DSN]\n\n"+
			"Create a new Ed25519 signing key and retire the current one. Tokens signed\n"+
			"with the old key stay valid until they expire; every replica picks the new\n"+
			"key up on its own.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil || fs.NArg() > 0 {
		return 2
	}
	db, err := openDB(ctx, dbf, env, false)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	defer db.Close()
	ts := jwt.NewTokenService(sqldb.NewSigningKeyService(db), "latchkey", "latchkey")
	ts.Now = env.Now
	kid, err := ts.Rotate(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "New signing key %s is now in use.\n", kid)
	return 0
}

// listenURL is the URL of a server listening on addr (LATCHKEY_ADDR; ""
// is the server's default), for want of a public URL: an unspecified host
// is this machine.
func listenURL(addr string) string {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func runAdminPasswordLink(ctx context.Context, args []string, env *Env) int {
	fs := flag.NewFlagSet("latchkey admin password-link", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dbf := newDBFlags(fs, env)
	email := fs.String("email", "", "the user's `email` (required)")
	var base string
	fs.StringVar(&base, "public-url", env.Getenv("LATCHKEY_URL"), "the server's public `URL` (its --public-url), which the link starts with (env LATCHKEY_URL; default: http:// and LATCHKEY_ADDR, else "+DefaultAddr+")")
	fs.StringVar(&base, "url", env.Getenv("LATCHKEY_URL"), "the same as --public-url")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey admin password-link --email EMAIL [--public-url URL] [--db DSN]\n\n"+
			"Print a one-time link with which the user EMAIL sets a new password for the\n"+
			"web UI, e.g. the first admin, or anyone locked out. It works once, for 72\n"+
			"hours, and replaces earlier unused links. It is shown only this once.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if *email == "" || fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "Error: --email is required.\n")
		fs.Usage()
		return 2
	}
	if base != "" && !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		fmt.Fprintf(env.Stderr, "Error: invalid --public-url %q: use http:// or https://\n", base)
		return 2
	}
	if base == "" {
		base = listenURL(env.Getenv("LATCHKEY_ADDR"))
		fmt.Fprintf(env.Stderr, "Note: the link assumes browsers reach the server at %s; give --public-url (or LATCHKEY_URL) if they do not.\n", base)
	}
	db, err := openDB(ctx, dbf, env, false)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	defer db.Close()
	secret, expires, err := sqldb.NewUserService(db).CreatePasswordResetForEmail(ctx, *email)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", latchkey.ErrorMessage(err))
		return 1
	}
	fmt.Fprintf(env.Stdout, "Set-password link for %s (works once, until %s; shown only this once):\n%s/ui/reset?token=%s\n",
		latchkey.NormalizeEmail(*email), expires.UTC().Format(time.RFC3339), strings.TrimRight(base, "/"), secret)
	return 0
}
