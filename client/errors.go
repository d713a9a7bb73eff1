package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// AuthorizationError mirrors prefect.exceptions.AuthorizationError: the
// server did not accept the credential. The Prefect client raises it when
// the response's errors contain "UNAUTHENTICATED" or "Malformed
// Authorization header" anywhere, when auth_info.tenant_id is null (an API
// token used as a key), and for a non-JSON answer to a request sent without
// credentials.
type AuthorizationError struct {
	// Message is set when the error did not come from a GraphQL errors list.
	Message string

	// Errors is the response's "errors" member, verbatim.
	Errors json.RawMessage
}

// Error returns Message, or the errors list printed as Python prints it
// (which is what `prefect auth status` shows).
func (e *AuthorizationError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return PythonRepr(e.Errors)
}

// ClientError mirrors prefect.exceptions.ClientError: any other GraphQL
// error, an HTTP 400 answer, a body that is not JSON, or a response that
// lacks what the caller needs.
type ClientError struct {
	// Message is set when the error did not come from a GraphQL errors list.
	Message string

	// Errors is the response's "errors" member, verbatim, if any.
	Errors json.RawMessage

	// StatusCode is the HTTP status (200 unless the server answered 400).
	StatusCode int

	// Response is the whole decoded response body when the error is about
	// its shape ("Unexpected response ..."), for callers that print it.
	Response json.RawMessage

	// Err is a cause, such as ErrNoData.
	Err error
}

// Unwrap returns Err.
func (e *ClientError) Unwrap() error { return e.Err }

// Error returns Message, or the errors list printed as Python prints it.
func (e *ClientError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return PythonRepr(e.Errors)
}

// Codes returns the extensions.code of every GraphQL error in the list.
func (e *ClientError) Codes() []string { return errorCodes(e.Errors) }

// Codes returns the extensions.code of every GraphQL error in the list.
func (e *AuthorizationError) Codes() []string { return errorCodes(e.Errors) }

// HTTPError is a non-2xx answer other than 400, which the Prefect client
// lets through as requests.HTTPError.
type HTTPError struct {
	StatusCode int
	Reason     string // the status text, e.g. "Unauthorized"
	URL        string
}

// Error formats the error as requests does:
// "401 Client Error: Unauthorized for url: http://…".
func (e *HTTPError) Error() string {
	kind := "Client"
	if e.StatusCode >= 500 {
		kind = "Server"
	}
	return fmt.Sprintf("%d %s Error: %s for url: %s", e.StatusCode, kind, e.Reason, e.URL)
}

// GraphQLError is one entry of a response's errors list.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Code returns extensions.code, or "".
func (e GraphQLError) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

func errorCodes(raw json.RawMessage) []string {
	var errs []GraphQLError
	if json.Unmarshal(raw, &errs) != nil {
		return nil
	}
	var codes []string
	for _, e := range errs {
		if c := e.Code(); c != "" {
			codes = append(codes, c)
		}
	}
	return codes
}

// format400 renders an HTTP 400 answer the way Prefect's
// format_graphql_request_error does, without the query and variables
// (they may carry secrets).
func format400(httpErr *HTTPError, body []byte) string {
	var content struct {
		Errors []GraphQLError `json:"errors"`
	}
	var b strings.Builder
	b.WriteString(httpErr.Error())
	b.WriteString("\n\n")
	if err := json.Unmarshal(body, &content); err != nil {
		b.WriteString("This is likely caused by a poorly formatted GraphQL query or mutation but the response could not be parsed for more details")
		return b.String()
	}
	if len(content.Errors) == 0 {
		b.WriteString("The server did not provide any error messages.")
		return b.String()
	}
	b.WriteString("The following error messages were provided by the GraphQL server:\n")
	for _, e := range content.Errors {
		code := e.Code()
		if code == "" {
			code = "UNKNOWN_ERROR"
		}
		msg := e.Message
		if msg == "" {
			msg = "No error message supplied."
		}
		b.WriteString("\n    ")
		b.WriteString(code + ": " + msg)
	}
	return b.String()
}

// ConnectionError is a request that got no HTTP answer: the URL is not an
// http:// or https:// URL, or the server could not be reached (refused,
// unknown host, timed out, TLS failure).
type ConnectionError struct {
	URL string
	Err error
}

// ErrBadURL is wrapped by a *ConnectionError whose URL is not an http:// or
// https:// URL.
var ErrBadURL = errors.New("not an http:// or https:// URL")

// Unwrap returns the cause.
func (e *ConnectionError) Unwrap() error { return e.Err }

// Error says which URL could not be reached, and why, in a few words.
func (e *ConnectionError) Error() string {
	if errors.Is(e.Err, ErrBadURL) {
		return fmt.Sprintf("the API URL %q is not an http:// or https:// URL", e.URL)
	}
	return fmt.Sprintf("cannot reach the API at %s: %s", e.URL, e.Reason())
}

// Reason is the cause in a few words, e.g. "connection refused".
func (e *ConnectionError) Reason() string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(e.Err, ErrBadURL):
		return ErrBadURL.Error()
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(e.Err, &dnsErr):
		return fmt.Sprintf("no such host %q", dnsErr.Name)
	case errors.Is(e.Err, context.DeadlineExceeded), os.IsTimeout(e.Err):
		return "no answer in time"
	case errors.Is(e.Err, context.Canceled):
		return "interrupted"
	case errors.As(e.Err, &certErr):
		return "the server's TLS certificate is not trusted: " + certErr.Err.Error()
	}
	// The innermost cause: url.Error and net.OpError repeat the URL and
	// the addresses.
	err := e.Err
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// Messages returns the message of every GraphQL error in a response's
// errors list, or nil if it is not one.
func Messages(errs json.RawMessage) []string {
	var list []GraphQLError
	if json.Unmarshal(errs, &list) != nil {
		return nil
	}
	var out []string
	for _, e := range list {
		if e.Message != "" {
			out = append(out, e.Message)
		}
	}
	return out
}
