package bench

import (
	"bytes"
	"context"
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

// Post returns a NewRequest function for Scenario that posts body to url
// with the headers of the Prefect client and, if credential is not nil, an
// "Authorization: Bearer" header with credential(w, i).
func Post(url string, body []byte, credential func(w, i int) string) func(ctx context.Context, w, i int) (*http.Request, error) {
	return func(ctx context.Context, w, i int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Prefect-Core-Version", "1.4.1")
		if credential != nil {
			req.Header.Set("Authorization", "Bearer "+credential(w, i))
		}
		return req, nil
	}
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
