package latchkey

import (
	"errors"
	"fmt"
)

// Error codes. Boundaries translate them: GraphQL extensions.code, HTTP
// status, CLI exit status.
const (
	ECONFLICT        = "conflict"          // the thing already exists
	EINTERNAL        = "internal"          // a bug or an outage; details are logged, not shown
	EINVALID         = "invalid"           // the input is wrong
	ENOTFOUND        = "not_found"         // no such thing, or the caller may not see it
	EUNAUTHENTICATED = "unauthenticated"   // no, bad, expired or revoked credential, or a tenant the caller is not in
	EFORBIDDEN       = "forbidden"         // authenticated, but the role does not allow it
	ERATELIMIT       = "rate_limited"      // too many failed attempts; shown as UNAUTHENTICATED to Prefect clients
	ETOOLARGE        = "request_too_large" // body, depth or complexity over the limit
)

// Error is Latchkey's application error. Its Message is safe to show to the
// caller; it never contains a secret.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("latchkey error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// "Internal error." for any other error, so internals never reach callers.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
