package latchkey

// ParseUUID reports whether s is a UUID in canonical 8-4-4-4-12 form and
// returns it lower-cased. It is the one UUID check of ids that come from
// outside (GraphQL arguments, the tenant header).
func ParseUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c - 'A' + 'a'
		default:
			return "", false
		}
	}
	return string(b), true
}
