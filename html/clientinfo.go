package html

// SignInLimiter limits failed password sign-ins per client address and
// per email (ratelimit.Guard implements it). CheckEmail runs before a
// password is checked and returns an error (ERATELIMIT) when the attempt
// must be refused unchecked; FailEmail runs after every wrong password.
type SignInLimiter interface {
	CheckEmail(addr, email string) error
	FailEmail(addr, email string)
}
