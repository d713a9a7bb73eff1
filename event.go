package latchkey

import "context"

// EventType names a change that can revoke a credential.
type EventType string

// Events published when a committed change can revoke a credential, so that
// whatever cached the credential, on this replica or another, drops it. Every
// one of them names the user (principal) whose credentials it touches.
const (
	// EventAPIKeyDeleted: key APIKeyID of user UserID was deleted, and with
	// it every access and refresh token minted from it.
	EventAPIKeyDeleted EventType = "api_key_deleted"

	// EventAPIKeyExpiryChanged: key APIKeyID of user UserID was given an
	// earlier expiry (it was rolled), which may be now.
	EventAPIKeyExpiryChanged EventType = "api_key_expiry_changed"

	// EventAPITokenDeleted: legacy token APITokenID of user UserID was
	// deleted, and with it every access and refresh token minted from it.
	EventAPITokenDeleted EventType = "api_token_deleted"

	// EventUserDeleted: user UserID (a service account of tenant TenantID)
	// was deleted, with its memberships, keys and tokens.
	EventUserDeleted EventType = "user_deleted"

	// EventMembershipChanged: UserID's membership of TenantID was created,
	// deleted or given another role (which may also change the user's
	// default tenant).
	EventMembershipChanged EventType = "membership_changed"

	// EventSessionsDeleted: web UI sessions of UserID were deleted: session
	// SessionID, or, when it is empty, several (a password set or reset).
	EventSessionsDeleted EventType = "sessions_deleted"

	// EventTokenFamilyRevoked: a refresh token of UserID was used twice,
	// so its family, and the access tokens minted in it, are revoked.
	EventTokenFamilyRevoked EventType = "token_family_revoked"
)

// Delivery events. An EventService sends these to its own subscribers to
// say that it may miss, or has missed, events; they are never published.
const (
	// EventsInterrupted: from now on events may be lost (the connection
	// that carries other replicas' events is down). Subscribers drop what
	// they cached and cache nothing until EventsResumed.
	EventsInterrupted EventType = "events_interrupted"

	// EventsResumed: events flow again, but some may have been lost
	// meanwhile. Subscribers drop what they cached and may cache again.
	EventsResumed EventType = "events_resumed"
)

// Event is a change that can revoke credentials. Which ids are set depends
// on Type; UserID always is, except for delivery events.
type Event struct {
	Type       EventType
	UserID     string
	TenantID   string
	APIKeyID   string
	APITokenID string
	SessionID  string
}

// EventService carries events to every subscriber, in this process and, for
// implementations that span replicas, in the others. Caches of credentials
// subscribe to it; stores publish to it.
type EventService interface {
	// Publish delivers ev to this process's subscribers before it returns,
	// and sends it to other replicas if the implementation spans them. An
	// error means other replicas may not have been told.
	Publish(ctx context.Context, ev Event) error

	// Subscribe calls fn for every event from now on, including delivery
	// events, until unsubscribe is called. fn runs on the publisher's
	// goroutine: it must be quick and must not block.
	Subscribe(fn func(Event)) (unsubscribe func())
}
