package jwt

// VerifyCacheLen returns how many verified tokens s remembers.
func (s *TokenService) VerifyCacheLen() int {
	c, err := s.setup()
	if err != nil {
		return 0
	}
	return c.cache.len()
}
