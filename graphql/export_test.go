package graphql

// Request is the JSON body of a GraphQL request, for tests of DecodeRequest.
type Request = request

// DecodeRequest is decodeRequest, for tests.
var DecodeRequest = decodeRequest
