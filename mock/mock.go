// Package mock provides function-field mocks of every latchkey service
// interface, for handler and resolver tests.
//
// Each mock has one XxxFn field per method; the method calls it. Calling a
// method whose Fn field is nil panics, which makes an unexpected call fail
// the test loudly.
package mock
