package latchkey

import (
	"unicode"
	"unicode/utf8"
)

// MaxNameLength is the longest name, in characters, of an API key, API
// token, service account or tenant.
const MaxNameLength = 200

// ValidateName returns EINVALID unless s is an acceptable name for field
// (e.g. "API key name"): at least one visible character, at most max
// characters (runes, not bytes), valid UTF-8, and none of the characters
// that make a name print as something it is not: control characters (NUL,
// ESC, CR, LF, any Cc), line and paragraph separators, bidirectional
// overrides, embeddings, isolates and marks (U+202A–U+202E, U+2066–U+2069,
// U+200E, U+200F, U+061C) and zero-width characters (U+200B–U+200D, U+2060,
// U+FEFF). The message says which field and what is wrong.
func ValidateName(field, s string, max int) error {
	if s == "" {
		return Errorf(EINVALID, "%s required.", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s is not valid UTF-8 text.", field)
	}
	n, blank := 0, true
	for _, r := range s {
		n++
		if what := forbiddenInName(r); what != "" {
			return Errorf(EINVALID, "%s must not contain %s (%U at character %d).", field, what, r, n)
		}
		if !unicode.IsSpace(r) {
			blank = false
		}
	}
	if blank {
		return Errorf(EINVALID, "%s must not be only spaces.", field)
	}
	if n > max {
		return Errorf(EINVALID, "%s must be at most %d characters.", field, max)
	}
	return nil
}

// forbiddenInName returns what kind of character r is if names may not
// contain it, or "".
func forbiddenInName(r rune) string {
	switch {
	case unicode.Is(unicode.Cc, r):
		return "control characters"
	case r == '\u2028' || r == '\u2029':
		return "line breaks"
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069',
		r == '\u200E', r == '\u200F', r == '\u061C':
		return "bidirectional formatting characters"
	case r >= '\u200B' && r <= '\u200D', r == '\u2060', r == '\uFEFF':
		return "zero-width characters"
	}
	return ""
}
