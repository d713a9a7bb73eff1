package client

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	slugDisallowed = regexp.MustCompile(`[^-.a-z0-9]+`)
	slugDashes     = regexp.MustCompile(`-{2,}`)
)

// Slugify is python-slugify's slugify(s, regex_pattern=r"[^-\.a-z0-9]+")
// for ASCII text: lower-case, apostrophes removed, disallowed runs turned
// into "-", repeated dashes collapsed, dashes trimmed.
func Slugify(s string) string {
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "'", "")
	s = slugDisallowed.ReplaceAllString(s, "-")
	s = slugDashes.ReplaceAllString(s, "-")
	return strings.Trim(s, "-")
}

// ServerSlug is Prefect's Client._api_server_slug: the slug of the server
// URL's network location (userinfo, host and port), or of the whole URL if
// it has none. The sections of ~/.prefect/auth.toml, where `prefect auth
// login` and `latchkey auth login` keep a server's API key and tenant, are
// keyed by it.
func ServerSlug(server string) string {
	netloc := ""
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		netloc = u.Host
		if u.User != nil {
			netloc = u.User.String() + "@" + netloc
		}
	}
	if netloc == "" {
		netloc = server
	}
	return Slugify(netloc)
}

// SavedAuth is one server's section of auth.toml: the API key and tenant
// that `latchkey auth login` (or `prefect auth login`) saved.
type SavedAuth struct {
	APIKey   string
	TenantID string
}

// ReadAuthFile reads server's section of the auth.toml at path (see
// Config.AuthFile), as Prefect's Client.load_auth_from_disk does. A missing
// file or section is empty, and so are the empty strings Prefect 1.0's
// logout leaves; a file that cannot be read or parsed is an error that
// names it.
func ReadAuthFile(path, server string) (SavedAuth, error) {
	m, err := readTOML(path)
	if err != nil {
		return SavedAuth{}, err
	}
	slug := ServerSlug(server)
	return SavedAuth{APIKey: lookup(m, []string{slug, "api_key"}), TenantID: lookup(m, []string{slug, "tenant_id"})}, nil
}
