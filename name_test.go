package latchkey_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"ci", "Build key", "Ünïcödé – ok", "日本語のキー", "a", "  padded  ", "no\u00a0break", "emoji 🔑", "עברית", "👩‍💻"[:4],
	} {
		if err := latchkey.ValidateName("API key name", name, 200); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if err := latchkey.ValidateName("API key name", strings.Repeat("é", 200), 200); err != nil {
		t.Errorf("200 two-byte characters: %v (the limit counts characters)", err)
	}
	for _, tt := range []struct {
		name string
		want string // in the message
	}{
		{"", "API key name required."},
		{" ", "only spaces"},
		{" \u3000\u00a0 ", "only spaces"},
		{"\t", "control characters"},
		{strings.Repeat("x", 201), "at most 200 characters"},
		{strings.Repeat("é", 201), "at most 200 characters"},
		{"a\x00b", "control characters (U+0000 at character 2)"},
		{"\x1b[31mred", "control characters (U+001B"},
		{"line\nbreak", "control characters (U+000A"},
		{"line\rbreak", "control characters (U+000D"},
		{"del\x7f", "control characters"},
		{"c1\u0085", "control characters"},
		{"sep\u2028", "line breaks"},
		{"evil\u202Etxt.exe", "bidirectional formatting characters (U+202E"},
		{"\u202Aembed", "bidirectional"},
		{"iso\u2066late", "bidirectional"},
		{"iso\u2069", "bidirectional"},
		{"mark\u200E", "bidirectional"},
		{"mark\u200F", "bidirectional"},
		{"arabic\u061Cmark", "bidirectional"},
		{"zero\u200Bwidth", "zero-width characters (U+200B"},
		{"zw\u200Cnj", "zero-width"},
		{"zw\u200Dj", "zero-width"},
		{"word\u2060joiner", "zero-width"},
		{"\uFEFFbom", "zero-width"},
		{"\u200B", "zero-width"},
		{"bad\xffutf8", "not valid UTF-8"},
	} {
		err := latchkey.ValidateName("API key name", tt.name, 200)
		if latchkey.ErrorCode(err) != latchkey.EINVALID {
			t.Errorf("%q: error %v, want EINVALID", tt.name, err)
			continue
		}
		msg := latchkey.ErrorMessage(err)
		if !strings.HasPrefix(msg, "API key name") || !strings.Contains(msg, tt.want) {
			t.Errorf("%q: message %q, want the field and %q", tt.name, msg, tt.want)
		}
	}
}
