package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/client"
)

// describe returns the message for an error that is not one of Prefect's
// texts (those are terminalErrors and failures): what happened and what
// to do, never a dial error or a dumped list of GraphQL errors.
func (r *runner) describe(err error) string {
	var connErr *client.ConnectionError
	var authErr *client.AuthorizationError
	var clientErr *client.ClientError
	var httpErr *client.HTTPError
	switch {
	case errors.As(err, &connErr):
		return r.connectionMessage(connErr)
	case errors.As(err, &httpErr):
		return fmt.Sprintf("The server at %s answered HTTP %d %s instead of a GraphQL response. Is that the Latchkey API? The URL comes from %s.", httpErr.URL, httpErr.StatusCode, httpErr.Reason, r.apiSource())
	case errors.As(err, &authErr) && authErr.Message == "":
		if r.sess != nil && r.sess.apiKey == "" && r.sess.apiToken == "" {
			return "You are not logged in. Use `latchkey auth login -k KEY` first."
		}
		return authMessage(client.Messages(authErr.Errors))
	case errors.As(err, &clientErr) && clientErr.Message == "" && len(client.Messages(clientErr.Errors)) > 0:
		return sentences(client.Messages(clientErr.Errors))
	}
	return err.Error()
}

// connectionMessage names the URL that could not be reached and the
// setting it came from.
func (r *runner) connectionMessage(e *client.ConnectionError) string {
	setting, from := "PREFECT__CLOUD__API", r.apiSource()
	if r.cfg != nil && r.cfg.apiFrom != "" {
		setting = r.cfg.apiFrom
	}
	if errors.Is(e, client.ErrBadURL) {
		return fmt.Sprintf("The API URL %q is not a URL: it needs http:// or https://. Set %s to the server's URL, e.g. %s.", e.URL, setting, client.DefaultURL)
	}
	return fmt.Sprintf("Cannot reach the Latchkey API at %s: %s. Is the server running there? The URL comes from %s.", e.URL, e.Reason(), from)
}

// apiSource says where the API URL was set.
func (r *runner) apiSource() string {
	if r.cfg != nil && r.cfg.apiFrom != "" {
		return r.cfg.apiFrom
	}
	return "the default; set PREFECT__CLOUD__API to the server's URL if it runs elsewhere"
}

// authMessage explains why the server refused the credential, from the
// messages of its UNAUTHENTICATED errors.
func authMessage(msgs []string) string {
	joined := sentences(msgs)
	switch {
	case contains(msgs, "API key expired."):
		return "Your API key has expired. Create a new key (in the web UI, or with `latchkey auth create-key` while logged in with another) and log in with it: `latchkey auth login -k KEY`."
	case contains(msgs, "Invalid API key."):
		return "The server does not accept your API key: it was revoked, or it is not a key of this server. Log in with a valid key: `latchkey auth login -k KEY`."
	case joined == "":
		joined = "Unauthenticated."
	}
	return "The server did not accept your credential: " + joined + " Log in with a valid API key: `latchkey auth login -k KEY`."
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sentences joins messages with spaces, ending each with a full stop.
func sentences(msgs []string) string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		m = strings.TrimSpace(m)
		if m != "" && !strings.HasSuffix(m, ".") && !strings.HasSuffix(m, "!") && !strings.HasSuffix(m, "?") {
			m += "."
		}
		out[i] = m
	}
	return strings.Join(out, " ")
}
