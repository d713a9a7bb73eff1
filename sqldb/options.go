package sqldb

import (
	"fmt"
	"io"

	"github.com/latchkey/latchkey/argon2id"
)

// passwordParams returns p, or argon2id.DefaultParams() when p is the zero
// value. Services that hash passwords (UserService, BootstrapService) have a
// PasswordParams field so tests can use cheap parameters.
func passwordParams(p argon2id.Params) argon2id.Params {
	if p == (argon2id.Params{}) {
		return argon2id.DefaultParams()
	}
	return p
}

// hashPassword returns the PHC string of password, salted from r.
func hashPassword(r io.Reader, password string, p argon2id.Params) (string, error) {
	h, err := argon2id.Hash(r, password, passwordParams(p))
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}
