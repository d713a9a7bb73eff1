package latchkey

import (
	"context"
	"time"
)

// AuthFailureKind says what failed to authenticate.
type AuthFailureKind string

// Kinds of failed authentication.
const (
	// AuthFailureCredential is a refused API credential (key, token,
	// session): its identifier is latchkey.SecretIdentifier of it.
	AuthFailureCredential AuthFailureKind = "credential"
	// AuthFailureSignIn is a refused web UI sign-in: its identifier is the
	// (normalized) email tried.
	AuthFailureSignIn AuthFailureKind = "sign_in"
)

// AuthFailure counts failed authentications of one identifier from one
// client address in one minute: one record, however many attempts.
type AuthFailure struct {
	Kind       AuthFailureKind
	Identifier string
	ClientAddr string
	Minute     time.Time // the start of the minute (UTC)
	Count      int
	FirstAt    time.Time
	LastAt     time.Time
}

// AuthFailureFilter selects failures. Nil fields do not filter.
type AuthFailureFilter struct {
	From   *time.Time // minutes at or after
	Before *time.Time // minutes before

	Offset int
	Limit  int
}

// FailureCounter is told of every refused credential (a bearer credential
// refused by the authentication middleware, a refresh token refused by the
// GraphQL API), so that clients that keep failing cost less;
// ratelimit.Guard implements it. It never refuses anything itself, and
// never keeps or logs the credential.
type FailureCounter interface {
	FailCredential(addr, credential string)
}

// AuthFailureService keeps counts of failed authentications.
type AuthFailureService interface {
	// RecordAuthFailures adds counts (from one replica's aggregator) to
	// the stored ones. It needs no caller: the server calls it.
	RecordAuthFailures(ctx context.Context, failures []*AuthFailure) error

	// DeleteAuthFailuresBefore deletes the counts of the minutes before
	// t and returns how many records went. Anonymous callers create
	// these records, so the server keeps them only so long
	// (--auth-failure-retention). It needs no caller: the server calls it.
	DeleteAuthFailuresBefore(ctx context.Context, t time.Time) (int64, error)

	// FindAuthFailures returns, newest minute first, the failures that
	// concern the caller's acting tenant, and their count before Offset
	// and Limit: failed sign-ins with the email of one of its members.
	// Failed credentials cannot be told apart by tenant (the store keeps
	// no identifier of a key), so no tenant is shown them. Human
	// TENANT_ADMINs only (EFORBIDDEN).
	FindAuthFailures(ctx context.Context, filter AuthFailureFilter) ([]*AuthFailure, int, error)
}
