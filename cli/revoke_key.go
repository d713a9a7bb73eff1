package cli

import (
	"errors"
	"strings"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey/client"
)

// runRevokeKey is `latchkey auth revoke-key -i KEY`, where KEY is the
// key's id (sent as is, as Prefect does), or else its name (unique among
// the keys you can see) or its identifier (prefix…last four, e.g.
// lku_…x9Qz, on servers that list identifiers).
func runRevokeKey(r *runner, o optionValues) error {
	arg := deref(o.str("id"))
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	id := arg
	if _, perr := uuid.Parse(arg); perr != nil && arg != "" {
		if id, err = r.resolveKey(c, arg); err != nil {
			return err
		}
	}
	ok, err := c.DeleteAPIKey(r.ctx, id)
	if err != nil && !errors.Is(err, client.ErrNoData) {
		return err
	}
	if !ok {
		return terminalf("Unable to revoke key %s", pyRepr(arg))
	}
	r.secho("Key successfully revoked!", green)
	return nil
}

// resolveKey finds the id of the one key whose identifier (if arg looks
// like one) or name is arg.
func (r *runner) resolveKey(c *client.Client, arg string) (string, error) {
	var keys []client.APIKey
	var err error
	byIdentifier := looksLikeIdentifier(arg)
	if byIdentifier {
		arg = strings.Replace(arg, "...", "…", 1)
		keys, err = c.APIKeysWithIdentifiers(r.ctx)
		if errors.Is(err, client.ErrNoIdentifiers) {
			return "", terminalf("This server does not list key identifiers: revoke the key by its id or name (see `latchkey auth list-keys`).")
		}
	} else {
		keys, err = c.APIKeys(r.ctx)
	}
	if err != nil {
		return "", err
	}
	var ids []string
	for _, k := range keys {
		if (byIdentifier && k.Identifier != nil && *k.Identifier == arg) || (!byIdentifier && k.Name == arg) {
			ids = append(ids, k.ID)
		}
	}
	what := "named"
	if byIdentifier {
		what = "with identifier"
	}
	switch len(ids) {
	case 0:
		return "", terminalf("No API key %s %s. See `latchkey auth list-keys` for your keys' names and ids.", what, pyRepr(arg))
	case 1:
		return ids[0], nil
	}
	return "", terminalf("%d API keys are %s %s: revoke one by its id (%s).", len(ids), what, pyRepr(arg), strings.Join(ids, ", "))
}

// looksLikeIdentifier reports whether s has the form of a key identifier:
// a prefix such as lku_, an ellipsis ("…" or "..."), and a tail.
func looksLikeIdentifier(s string) bool {
	head, tail, ok := strings.Cut(strings.Replace(s, "...", "…", 1), "…")
	return ok && len(head) == 4 && head[3] == '_' && tail != "" && !strings.ContainsAny(tail, " …")
}
