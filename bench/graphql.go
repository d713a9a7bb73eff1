package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// GraphQLBody returns the JSON body the Prefect 1.x client posts: the
// query, and the variables JSON-encoded into a string ("null" for none).
func GraphQLBody(query string, vars any) ([]byte, error) {
	vb, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("graphql body: %w", err)
	}
	b, err := json.Marshal(map[string]any{"query": query, "variables": string(vb)})
	if err != nil {
		return nil, fmt.Errorf("graphql body: %w", err)
	}
	return b, nil
}

// CheckGraphQL returns a Check that wants HTTP 200, no GraphQL errors, and
// a non-null data.<field>. A failure's kind is its HTTP status, or its
// first error's extensions.code and message (which never carry secrets).
func CheckGraphQL(field string) func(status int, body []byte) error {
	want := []byte(`"` + field + `":{`)
	return func(status int, body []byte) error {
		if status == http.StatusOK && bytes.Contains(body, want) && !bytes.Contains(body, []byte(`"errors"`)) {
			return nil
		}
		var resp struct {
			Errors []struct {
				Message    string `json:"message"`
				Extensions struct {
					Code string `json:"code"`
				} `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("HTTP %d, not JSON (%d bytes)", status, len(body))
		}
		if len(resp.Errors) > 0 {
			return fmt.Errorf("HTTP %d %s: %s", status, resp.Errors[0].Extensions.Code, resp.Errors[0].Message)
		}
		return fmt.Errorf("HTTP %d, no data.%s", status, field)
	}
}

// CheckBody returns a Check that wants HTTP 200 and exactly body.
func CheckBody(body string) func(status int, got []byte) error {
	return func(status int, got []byte) error {
		if status != http.StatusOK {
			return fmt.Errorf("HTTP %d", status)
		} else if string(got) != body {
			return fmt.Errorf("unexpected body (%d bytes)", len(got))
		}
		return nil
	}
}
