package latchkey

import (
	"errors"
	"fmt"
)

// Code says what kind of failure an Error is. All codes are defined here;
// boundaries translate them (GraphQL extensions.code, HTTP status, CLI exit
// status) and define none of their own.
type Code string

// Error codes.
const (
	ECONFLICT        Code = "conflict"          // the thing already exists
	EINTERNAL        Code = "internal"          // a bug or an outage; details are logged, not shown
	EINVALID         Code = "invalid"           // the input is wrong
	ENOTFOUND        Code = "not_found"         // no such thing, or the caller may not see it
	EUNAUTHENTICATED Code = "unauthenticated"   // no, bad, expired or revoked credential, or a tenant the caller is not in
	EFORBIDDEN       Code = "forbidden"         // authenticated, but the role does not allow it
	ERATELIMIT       Code = "rate_limited"      // too many failed attempts; shown as UNAUTHENTICATED to Prefect clients
	ETOOLARGE        Code = "request_too_large" // body, depth or complexity over the limit

	// EVERSIONLOCK is a flow-run state change that lost a race: the
	// version sent is not the run's current version (on a run with
	// VersionLocking), the run has already finished, or it was already
	// submitted by another agent. GraphQL reports it as Prefect's
	// VERSION_LOCKING_ERROR, which the Prefect client turns into
	// VersionLockMismatchSignal ("someone else moved this run on; stop").
	EVERSIONLOCK Code = "version_lock"
)

// Error is Latchkey's application error. Its Message is safe to show to the
// caller; it never contains a secret.
type Error struct {
	Code    Code
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("latchkey error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other error and "" for nil.
func ErrorCode(err error) Code {
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
