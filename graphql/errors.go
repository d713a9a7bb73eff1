package graphql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latchkey/latchkey"
)

// GraphQL extensions.code values.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeNotFound        = "NOT_FOUND"
	CodeConflict        = "CONFLICT"
	CodeRequestTooLarge = "REQUEST_TOO_LARGE"
	CodeInternal        = "INTERNAL_SERVER_ERROR"

	// CodeVersionLocking is Prefect Cloud's code for a state change with a
	// stale version; the Prefect client raises VersionLockMismatchSignal.
	CodeVersionLocking = "VERSION_LOCKING_ERROR"
)

// internalMessage is all a caller learns about an internal error.
const internalMessage = "Internal error."

// ExtensionCode returns the GraphQL extensions.code for a latchkey error code.
// ERATELIMIT is reported as UNAUTHENTICATED: the Prefect client only
// recognises that code as an authentication failure, and must never be
// told to back off and retry (it would sleep for minutes on HTTP 429).
func ExtensionCode(code latchkey.Code) string {
	switch code {
	case latchkey.EUNAUTHENTICATED, latchkey.ERATELIMIT:
		return CodeUnauthenticated
	case latchkey.EFORBIDDEN:
		return CodeForbidden
	case latchkey.EINVALID:
		return CodeBadUserInput
	case latchkey.ENOTFOUND:
		return CodeNotFound
	case latchkey.ECONFLICT:
		return CodeConflict
	case latchkey.ETOOLARGE:
		return CodeRequestTooLarge
	case latchkey.EVERSIONLOCK:
		return CodeVersionLocking
	}
	return CodeInternal
}

// errPanic is what a recovered panic becomes once it has been logged.
var errPanic = &latchkey.Error{Code: latchkey.EINTERNAL, Message: internalMessage}

// presentError turns any error into the GraphQL error sent to the caller.
// latchkey errors keep their message and get a code from ExtensionCode, except
// internal ones, which are logged and shown as "Internal error.". Errors
// raised by the GraphQL engine itself (parse and validation errors) pass
// through. It never returns nil.
func presentError(logger *slog.Logger, ctx context.Context, err error) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	if !errors.As(err, &gqlErr) {
		gqlErr = gqlerror.WrapPath(gql.GetPath(ctx), err)
	}
	out := &gqlerror.Error{Path: gqlErr.Path, Locations: gqlErr.Locations}

	var lkErr *latchkey.Error
	switch {
	case errors.As(err, &lkErr) && ExtensionCode(lkErr.Code) != CodeInternal:
		out.Message = lkErr.Message
		out.Extensions = map[string]any{"code": ExtensionCode(lkErr.Code)}
	case lkErr == nil && gqlErr.Err == nil:
		// From the engine: a parse, validation or variable error.
		out.Message = gqlErr.Message
		out.Extensions = gqlErr.Extensions
		if out.Extensions["code"] == nil {
			out.Extensions = map[string]any{"code": CodeBadUserInput}
		}
	default:
		if !errors.Is(err, errPanic) {
			logger.LogAttrs(ctx, slog.LevelError, "graphql: internal error",
				slog.String("error", latchkey.RedactSecrets(err.Error())),
				slog.String("path", gqlErr.Path.String()))
		}
		out.Message = internalMessage
		out.Extensions = map[string]any{"code": CodeInternal}
	}
	out.Message = safeMessage(out.Message)
	out.Path = safePath(out.Path)
	return out
}

// safePath breaks up "API_ERROR" in a path, where a caller's alias could
// have put it.
func safePath(path ast.Path) ast.Path {
	var out ast.Path
	for i, el := range path {
		if name, ok := el.(ast.PathName); ok && strings.Contains(strings.ToUpper(string(name)), "API_ERROR") {
			if out == nil {
				out = slices.Clone(path)
			}
			out[i] = ast.PathName(strings.ReplaceAll(strings.ToUpper(string(name)), "API_ERROR", "API ERROR"))
		}
	}
	if out == nil {
		return path
	}
	return out
}

// safeMessage is the last line of defence on every message sent: secrets
// are redacted, and "API_ERROR", which makes the Prefect client re-send the
// request up to six times, is broken up.
func safeMessage(msg string) string {
	msg = latchkey.RedactSecrets(msg)
	if strings.Contains(strings.ToUpper(msg), "API_ERROR") {
		msg = strings.ReplaceAll(strings.ReplaceAll(msg, "API_ERROR", "API ERROR"), "api_error", "api error")
		if strings.Contains(strings.ToUpper(msg), "API_ERROR") {
			msg = internalMessage
		}
	}
	if msg == "" {
		msg = internalMessage
	}
	return msg
}

// recoverPanic logs a panic in a resolver and turns it into an internal error.
func recoverPanic(logger *slog.Logger, ctx context.Context, v any) error {
	logger.LogAttrs(ctx, slog.LevelError, "graphql: panic",
		slog.String("panic", latchkey.RedactSecrets(fmt.Sprint(v))),
		slog.String("stack", latchkey.RedactSecrets(string(debug.Stack()))))
	return errPanic
}
