package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Prefect client is Python: it encodes request bodies with json.dumps
// and prints server errors as the repr of decoded JSON. This file renders
// JSON the same ways, keeping the key order of the input.

// pyValue is a decoded JSON value that remembers object key order.
type pyValue struct {
	kind   byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys   []string
	vals   []*pyValue
	str    string
	number json.Number
	bool   bool
}

func decodePy(data []byte) (*pyValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodePyValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

func decodePyValue(dec *json.Decoder) (*pyValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &pyValue{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				val, err := decodePyValue(dec)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return v, nil
		case '[':
			v := &pyValue{kind: 'a'}
			for dec.More() {
				val, err := decodePyValue(dec)
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return v, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	case string:
		return &pyValue{kind: 's', str: t}, nil
	case json.Number:
		return &pyValue{kind: 'n', number: t}, nil
	case bool:
		return &pyValue{kind: 'b', bool: t}, nil
	case nil:
		return &pyValue{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %T", tok)
}

// PythonRepr renders a JSON document the way Python prints the value
// json.loads returns for it: {'message': 'Unauthorized', 'extensions':
// {'code': 'UNAUTHENTICATED'}}. Invalid JSON is returned unchanged.
func PythonRepr(raw json.RawMessage) string {
	v, err := decodePy(raw)
	if err != nil {
		return string(raw)
	}
	var b strings.Builder
	v.repr(&b)
	return b.String()
}

// PythonJSON renders a JSON document as Python's json.dumps would after
// json.loads: separators ", " and ": " (or "," and ": " with an indent),
// non-ASCII escaped, key order kept. indent < 0 means no indent. Invalid
// JSON is returned unchanged.
func PythonJSON(raw json.RawMessage, indent int) string {
	v, err := decodePy(raw)
	if err != nil {
		return string(raw)
	}
	var b strings.Builder
	v.dumps(&b, indent, 0)
	return b.String()
}

// pyDumps encodes v as Go's encoding/json would, then re-renders it the way
// Python's json.dumps(v) prints it.
func pyDumps(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return PythonJSON(bytes.TrimSpace(buf.Bytes()), -1), nil
}

func (v *pyValue) repr(b *strings.Builder) {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStrRepr(k))
			b.WriteString(": ")
			v.vals[i].repr(b)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, e := range v.vals {
			if i > 0 {
				b.WriteString(", ")
			}
			e.repr(b)
		}
		b.WriteByte(']')
	case 's':
		b.WriteString(pyStrRepr(v.str))
	case 'n':
		b.WriteString(pyNumber(v.number))
	case 'b':
		if v.bool {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case 'z':
		b.WriteString("None")
	}
}

func (v *pyValue) dumps(b *strings.Builder, indent, level int) {
	newline := func(l int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*l))
		}
	}
	itemSep := ", "
	if indent >= 0 {
		itemSep = ","
	}
	switch v.kind {
	case 'o':
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(itemSep)
			}
			newline(level + 1)
			b.WriteString(pyJSONString(k))
			b.WriteString(": ")
			v.vals[i].dumps(b, indent, level+1)
		}
		newline(level)
		b.WriteByte('}')
	case 'a':
		if len(v.vals) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range v.vals {
			if i > 0 {
				b.WriteString(itemSep)
			}
			newline(level + 1)
			e.dumps(b, indent, level+1)
		}
		newline(level)
		b.WriteByte(']')
	case 's':
		b.WriteString(pyJSONString(v.str))
	case 'n':
		b.WriteString(pyNumber(v.number))
	case 'b':
		if v.bool {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case 'z':
		b.WriteString("null")
	}
}

// pyJSONString quotes s as json.dumps does with ensure_ascii=True.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || r > 0x7e && r < 0x10000:
				fmt.Fprintf(&b, `\u%04x`, r)
			case r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pyStrRepr quotes s as Python's repr(str) does.
func pyStrRepr(s string) string {
	quote := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
		switch {
		case r == utf8.RuneError && width == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteByte(quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// pyNumber renders a JSON number as Python prints the int or float that
// json.loads makes of it.
func pyNumber(n json.Number) string {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return s
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's repr(float): the shortest digits that round-trip,
// in fixed notation unless the decimal exponent is below -4 or above 15.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // e.g. -1.2345e+06
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
}
