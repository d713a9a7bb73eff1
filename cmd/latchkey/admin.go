package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cmdline"
	"github.com/latchkey/latchkey/jwt"
	"github.com/latchkey/latchkey/sqldb"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// adminContext marks ctx as an operator command for the audit log: the
// events it writes have no actor and come from "local".
func adminContext(ctx context.Context, command string) context.Context {
	return latchkey.NewContextWithClientInfo(ctx, latchkey.ClientInfo{Addr: "local", UserAgent: "latchkey admin " + command})
}

// adminCommand is `latchkey admin`.
func adminCommand(env *Env) *cobra.Command {
	admin := &cobra.Command{
		Use:   "admin",
		Short: "Bootstrap tenants and admins, rotate signing keys (in-process, no server needed)",
		Long: `Administer a Latchkey database in-process (no running server or API key needed).

Every command opens the database with the system secret the server uses:
--system-secret-file (or LATCHKEY_SYSTEM_SECRET_FILE), else
LATCHKEY_SYSTEM_SECRETS, else, with SQLite only, the file DB.secret beside the
database.`,
	}
	admin.AddCommand(adminInitCommand(env), adminRotateCommand(env), adminPasswordLinkCommand(env))
	return admin
}

// dbFlags are the flags every admin command has: the database and its
// system secret.
type dbFlags struct {
	dsn, secretFile *string
}

func newDBFlags(fs *pflag.FlagSet, env *Env) dbFlags {
	dsn := cmp.Or(env.Getenv("LATCHKEY_DB"), DefaultDSN)
	return dbFlags{
		dsn:        fs.String("db", dsn, "SQLite `file` or postgres:// URL (env LATCHKEY_DB)"),
		secretFile: fs.String("system-secret-file", env.Getenv(envSystemSecretFile), systemSecretFileUsage),
	}
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

func adminInitCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a tenant, its admin user and the admin's API key",
		Long: "Create a tenant and make EMAIL its TENANT_ADMIN (creating the user if needed),\n" +
			"then create and print an API key for that admin. The key is shown only once.",
	}
	fs := cmd.Flags()
	dbf := newDBFlags(fs, env)
	email := fs.String("email", "", "the admin's `email` (required)")
	tenant := fs.String("tenant", "", "the tenant's `name` (required)")
	slug := fs.String("slug", "", "the tenant's `slug` (default: derived from the name)")
	quiet := fs.BoolP("quiet", "q", false, "print only the API key")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *email == "" || *tenant == "" {
			return cmdline.Usage(errors.New("--email and --tenant are required"))
		}
		ctx := adminContext(cmd.Context(), "init")
		db, err := openDB(ctx, dbf, env, true)
		if err != nil {
			return err
		}
		defer db.Close()
		res, err := sqldb.NewBootstrapService(db).Bootstrap(ctx, latchkey.BootstrapInput{
			Email: *email, TenantName: *tenant, TenantSlug: *slug,
		})
		if err != nil {
			return errors.New(latchkey.ErrorMessage(err))
		}
		if *quiet {
			fmt.Fprintln(env.Stdout, res.Secret)
			return nil
		}
		fmt.Fprintf(env.Stdout, "Created tenant %q (%s) with admin %s.\n", res.Tenant.Name, res.Tenant.Slug, res.User.Email)
		fmt.Fprintf(env.Stdout, "API key for %s (shown only this once; store it somewhere safe):\n%s\n", res.User.Email, res.Secret)
		return nil
	}
	return cmd
}

func adminRotateCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-signing-key",
		Short: "Sign new access tokens with a fresh Ed25519 key",
		Long: "Create a new Ed25519 signing key and retire the current one. Tokens signed\n" +
			"with the old key stay valid until they expire; every replica picks the new\n" +
			"key up on its own.",
	}
	dbf := newDBFlags(cmd.Flags(), env)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := adminContext(cmd.Context(), "rotate-signing-key")
		db, err := openDB(ctx, dbf, env, false)
		if err != nil {
			return err
		}
		defer db.Close()
		ts := jwt.NewTokenService(sqldb.NewSigningKeyService(db), "latchkey", "latchkey")
		ts.Now = env.Now
		kid, err := ts.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "New signing key %s is now in use.\n", kid)
		return nil
	}
	return cmd
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

func adminPasswordLinkCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "password-link",
		Short: "Print a one-time link with which a user sets a web UI password",
		Long: "Print a one-time link with which the user EMAIL sets a new password for the\n" +
			"web UI, e.g. the first admin, or anyone locked out. It works once, for 72\n" +
			"hours, and replaces earlier unused links. It is shown only this once.",
	}
	fs := cmd.Flags()
	dbf := newDBFlags(fs, env)
	email := fs.String("email", "", "the user's `email` (required)")
	var base string
	fs.StringVar(&base, "public-url", env.Getenv("LATCHKEY_URL"), "the server's public `URL` (its --public-url), which the link starts with (env LATCHKEY_URL; default: http:// and LATCHKEY_ADDR, else "+DefaultAddr+")")
	fs.StringVar(&base, "url", env.Getenv("LATCHKEY_URL"), "the same as --public-url")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *email == "" {
			return cmdline.Usage(errors.New("--email is required"))
		}
		if base != "" && !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
			return cmdline.Usage(fmt.Errorf("invalid --public-url %q: use http:// or https://", base))
		}
		if base == "" {
			base = listenURL(env.Getenv("LATCHKEY_ADDR"))
			fmt.Fprintf(env.Stderr, "Note: the link assumes browsers reach the server at %s; give --public-url (or LATCHKEY_URL) if they do not.\n", base)
		}
		ctx := adminContext(cmd.Context(), "password-link")
		db, err := openDB(ctx, dbf, env, false)
		if err != nil {
			return err
		}
		defer db.Close()
		secret, expires, err := sqldb.NewUserService(db).CreatePasswordResetForEmail(ctx, *email)
		if err != nil {
			return errors.New(latchkey.ErrorMessage(err))
		}
		fmt.Fprintf(env.Stdout, "Set-password link for %s (works once, until %s; shown only this once):\n%s/ui/reset?token=%s\n",
			latchkey.NormalizeEmail(*email), expires.UTC().Format(time.RFC3339), strings.TrimRight(base, "/"), secret)
		return nil
	}
	return cmd
}
