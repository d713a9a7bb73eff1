package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
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
	fmt.Fprintf(env.Stderr, "latchkey admin: unknown command %q\n\n%s", args[0], adminUsage)
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

// openDB opens the database with the system secret the server uses (see
// systemSecrets); a secret file it creates is reported on stderr.
func openDB(ctx context.Context, f dbFlags, env *Env) (*sqldb.DB, error) {
	secrets, source, err := systemSecrets(*f.dsn, *f.secretFile, splitSystemSecrets(env.Getenv(envSystemSecrets)))
	if err != nil {
		return nil, err
	}
	db := sqldb.NewDB(*f.dsn)
	db.Now, db.Secrets = env.Now, secrets
	db.Logger = newLogger(env.Stderr, "text", slog.LevelWarn)
	if err := db.Open(ctx); err != nil {
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
	db, err := openDB(ctx, dbf, env)
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
	db, err := openDB(ctx, dbf, env)
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

func runAdminPasswordLink(ctx context.Context, args []string, env *Env) int {
	fs := flag.NewFlagSet("latchkey admin password-link", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dbf := newDBFlags(fs, env)
	email := fs.String("email", "", "the user's `email` (required)")
	defURL := "http://" + DefaultAddr
	if v := env.Getenv("LATCHKEY_URL"); v != "" {
		defURL = v
	}
	base := fs.String("url", defURL, "the server's public `URL` the link starts with (env LATCHKEY_URL)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey admin password-link --email EMAIL [--url URL] [--db DSN]\n\n"+
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
	db, err := openDB(ctx, dbf, env)
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
		latchkey.NormalizeEmail(*email), expires.UTC().Format(time.RFC3339), strings.TrimRight(*base, "/"), secret)
	return 0
}
