package graphql

import (
	"bytes"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/go-json-experiment/json/jsontext"
)

// DecodeRequest decodes a request body as the handler does, with the
// limits for requests with a credential or, if anonymous, without one.
func DecodeRequest(body []byte, anonymous bool) (*gql.RawParams, error) {
	lim := authenticatedLimits(DefaultMaxTokens)
	if anonymous {
		lim = anonymousLimits(DefaultMaxTokens)
	}
	params, _, err := decodeRequest(jsontext.NewDecoder(bytes.NewBuffer(body)), &lim)
	return params, err
}

// Limits are the input limits of a handler.
type Limits = inputLimits

// NewLimits returns the limits for requests with a credential or, if
// anonymous, without one.
func NewLimits(anonymous bool) *Limits {
	lim := authenticatedLimits(DefaultMaxTokens)
	if anonymous {
		lim = anonymousLimits(DefaultMaxTokens)
	}
	return &lim
}

// DecodeRequestWith is DecodeRequest reusing dec and lim, as the handler
// does.
func DecodeRequestWith(dec *jsontext.Decoder, body *bytes.Buffer, lim *Limits) (*gql.RawParams, error) {
	dec.Reset(body)
	params, _, err := decodeRequest(dec, lim)
	return params, err
}

// CheckQuery is checkQuery with the limits DecodeRequest uses.
func CheckQuery(query string, anonymous bool) error {
	lim := authenticatedLimits(DefaultMaxTokens)
	if anonymous {
		lim = anonymousLimits(DefaultMaxTokens)
	}
	return checkQuery(query, &lim)
}
