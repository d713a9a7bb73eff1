package cli

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file renders help the way Click 8.0 does (click/formatting.py and
// Python's textwrap, which Click wraps): the same wrapping, indents,
// definition lists and short help, so the screens match Prefect's.

// noWrap marks a paragraph Click must not rewrap (Click's "\b" line).
const noWrap = "\b"

// runeLen is Python's len(str).
func runeLen(s string) int { return utf8.RuneCountInString(s) }

// helpWidth is Click's HelpFormatter width: the terminal's columns (COLUMNS,
// else 80) capped at 80, minus 2, at least 50.
func helpWidth(columns int) int {
	if columns <= 0 {
		columns = 80
	}
	w := min(columns, 80) - 2
	return max(w, 50)
}

func isSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\x0b', '\x0c', '\r', ' ':
		return true
	}
	return false
}

// isLetter is Python's [^\d\W]: a word character that is not a digit.
func isLetter(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsMark(r) }

func isWordChar(r rune) bool { return isLetter(r) || unicode.IsDigit(r) }

// isWordPunct is textwrap's [\w!"'&.,?].
func isWordPunct(r rune) bool { return isWordChar(r) || strings.ContainsRune(`!"'&.,?`, r) }

// splitChunks is textwrap.TextWrapper._split with break_on_hyphens: runs of
// whitespace, and words that may end after a hyphen between letters.
func splitChunks(text string) []string {
	rs := []rune(text)
	n := len(rs)
	dashesAt := func(j int) int {
		k := j
		for k < n && rs[k] == '-' {
			k++
		}
		return k - j
	}
	var chunks []string
	for i := 0; i < n; {
		if isSpace(rs[i]) {
			j := i
			for j < n && isSpace(rs[j]) {
				j++
			}
			chunks = append(chunks, string(rs[i:j]))
			i = j
			continue
		}
		// An em-dash between words is a chunk of its own.
		if d := dashesAt(i); d >= 2 && i > 0 && isWordPunct(rs[i-1]) && i+d < n && isWordChar(rs[i+d]) {
			chunks = append(chunks, string(rs[i:i+d]))
			i += d
			continue
		}
		j := i + 1
		for ; j < n; j++ {
			if isSpace(rs[j]) {
				break
			}
			if rs[j] == '-' && hyphenBreak(rs, j) {
				j++
				break
			}
			if d := dashesAt(j); d >= 2 && isWordPunct(rs[j-1]) && j+d < n && isWordChar(rs[j+d]) {
				break
			}
		}
		chunks = append(chunks, string(rs[i:j]))
		i = j
	}
	return chunks
}

// hyphenBreak reports whether textwrap may break after the hyphen at j.
func hyphenBreak(rs []rune, j int) bool {
	before := j >= 2 && isLetter(rs[j-1]) && isLetter(rs[j-2]) ||
		j >= 3 && isLetter(rs[j-1]) && rs[j-2] == '-' && isLetter(rs[j-3])
	if !before || j+1 >= len(rs) || !isLetter(rs[j+1]) {
		return false
	}
	if j+2 < len(rs) && isLetter(rs[j+2]) {
		return true
	}
	return j+3 < len(rs) && rs[j+2] == '-' && isLetter(rs[j+3])
}

// wrapper is Click's TextWrapper: textwrap.TextWrapper with
// replace_whitespace=False and Click's long-word handling.
type wrapper struct {
	width               int
	initial, subsequent string
}

// fill is TextWrapper.fill.
func (w wrapper) fill(text string) string {
	text = expandTabs(text)
	chunks := splitChunks(text)
	// Reverse so the next chunk is at the end, as textwrap does.
	for i, j := 0, len(chunks)-1; i < j; i, j = i+1, j-1 {
		chunks[i], chunks[j] = chunks[j], chunks[i]
	}
	var lines []string
	for len(chunks) > 0 {
		var cur []string
		curLen := 0
		indent := w.initial
		if len(lines) > 0 {
			indent = w.subsequent
		}
		width := w.width - runeLen(indent)
		if strings.TrimSpace(chunks[len(chunks)-1]) == "" && len(lines) > 0 {
			chunks = chunks[:len(chunks)-1]
		}
		for len(chunks) > 0 {
			l := runeLen(chunks[len(chunks)-1])
			if curLen+l > width {
				break
			}
			cur = append(cur, chunks[len(chunks)-1])
			chunks = chunks[:len(chunks)-1]
			curLen += l
		}
		if len(chunks) > 0 && runeLen(chunks[len(chunks)-1]) > width {
			// Click's _handle_long_word: cut the word to fit.
			space := max(width-curLen, 1)
			last := []rune(chunks[len(chunks)-1])
			cur = append(cur, string(last[:space]))
			chunks[len(chunks)-1] = string(last[space:])
		}
		if len(cur) > 0 && strings.TrimSpace(cur[len(cur)-1]) == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			lines = append(lines, indent+strings.Join(cur, ""))
		}
	}
	return strings.Join(lines, "\n")
}

func (w wrapper) indentOnly(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		ind := w.initial
		if i > 0 {
			ind = w.subsequent
		}
		lines[i] = ind + l
	}
	return strings.Join(lines, "\n")
}

func expandTabs(s string) string {
	if !strings.ContainsRune(s, '\t') {
		return s
	}
	var b strings.Builder
	col := 0
	for _, r := range s {
		switch r {
		case '\t':
			n := 8 - col%8
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case '\n', '\r':
			b.WriteRune(r)
			col = 0
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String()
}

// wrapText is click.formatting.wrap_text.
func wrapText(text string, width int, initial, subsequent string, preserveParagraphs bool) string {
	text = expandTabs(text)
	w := wrapper{width: width, initial: initial, subsequent: subsequent}
	if !preserveParagraphs {
		return w.fill(text)
	}
	type para struct {
		indent int
		raw    bool
		text   string
	}
	var ps []para
	var buf []string
	indent := -1
	flush := func() {
		if len(buf) == 0 {
			return
		}
		ind := max(indent, 0)
		if strings.TrimSpace(buf[0]) == noWrap {
			ps = append(ps, para{ind, true, strings.Join(buf[1:], "\n")})
		} else {
			ps = append(ps, para{ind, false, strings.Join(buf, " ")})
		}
		buf = buf[:0]
	}
	for _, line := range splitLines(text) {
		if line == "" {
			flush()
			indent = -1
			continue
		}
		if indent < 0 {
			orig := runeLen(line)
			line = strings.TrimLeftFunc(line, unicode.IsSpace)
			indent = orig - runeLen(line)
		}
		buf = append(buf, line)
	}
	flush()
	out := make([]string, len(ps))
	for i, p := range ps {
		pw := wrapper{width: width, initial: initial + strings.Repeat(" ", p.indent), subsequent: subsequent + strings.Repeat(" ", p.indent)}
		if p.raw {
			out[i] = pw.indentOnly(p.text)
		} else {
			out[i] = pw.fill(p.text)
		}
	}
	return strings.Join(out, "\n\n")
}

// splitLines is Python's str.splitlines for the line breaks help text uses.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// formatter is click.HelpFormatter.
type formatter struct {
	width  int
	indent int
	buf    strings.Builder
}

func (f *formatter) write(s string) { f.buf.WriteString(s) }

func (f *formatter) writeUsage(prog, args string) {
	prefix := strings.Repeat(" ", f.indent) + "Usage: " + prog + " "
	textWidth := f.width - f.indent
	if textWidth >= runeLen(prefix)+20 {
		f.write(wrapText(args, textWidth, prefix, strings.Repeat(" ", runeLen(prefix)), false))
	} else {
		f.write(prefix)
		f.write("\n")
		ind := strings.Repeat(" ", max(f.indent, len("Usage: "))+4)
		f.write(wrapText(args, textWidth, ind, ind, false))
	}
	f.write("\n")
}

func (f *formatter) writeParagraph() {
	if f.buf.Len() > 0 {
		f.write("\n")
	}
}

func (f *formatter) writeText(text string) {
	ind := strings.Repeat(" ", f.indent)
	f.write(wrapText(text, f.width, ind, ind, true))
	f.write("\n")
}

func (f *formatter) section(name string, body func()) {
	f.writeParagraph()
	f.write(strings.Repeat(" ", f.indent) + name + ":\n")
	f.indent += 2
	body()
	f.indent -= 2
}

// writeDL is HelpFormatter.write_dl with col_max 30 and col_spacing 2.
func (f *formatter) writeDL(rows [][2]string) {
	const colMax, colSpacing = 30, 2
	first := 0
	for _, r := range rows {
		first = max(first, runeLen(r[0]))
	}
	firstCol := min(first, colMax) + colSpacing
	for _, r := range rows {
		f.write(strings.Repeat(" ", f.indent) + r[0])
		if r[1] == "" {
			f.write("\n")
			continue
		}
		if runeLen(r[0]) <= firstCol-colSpacing {
			f.write(strings.Repeat(" ", firstCol-runeLen(r[0])))
		} else {
			f.write("\n")
			f.write(strings.Repeat(" ", firstCol+f.indent))
		}
		textWidth := max(f.width-firstCol-2, 10)
		lines := splitLines(wrapText(r[1], textWidth, "", "", true))
		if len(lines) == 0 {
			f.write("\n")
			continue
		}
		f.write(lines[0] + "\n")
		for _, l := range lines[1:] {
			f.write(strings.Repeat(" ", firstCol+f.indent) + l + "\n")
		}
	}
}

// String is Context.get_help: the buffer without trailing newlines.
func (f *formatter) String() string { return strings.TrimRight(f.buf.String(), "\n") }

// shortHelp is click.utils.make_default_short_help.
func shortHelp(help string, maxLength int) string {
	if i := strings.Index(help, "\n\n"); i >= 0 {
		help = help[:i]
	}
	words := strings.Fields(help)
	if len(words) == 0 {
		return ""
	}
	if words[0] == noWrap {
		words = words[1:]
	}
	total := 0
	last := len(words) - 1
	i := 0
	truncated := false
	for i = 0; i < len(words); i++ {
		word := words[i]
		total += runeLen(word)
		if i > 0 {
			total++
		}
		if total > maxLength {
			truncated = true
			break
		}
		if strings.HasSuffix(word, ".") {
			return strings.Join(words[:i+1], " ")
		}
		if total == maxLength && i != last {
			truncated = true
			break
		}
	}
	if !truncated {
		return strings.Join(words, " ")
	}
	total += len("...")
	for i > 0 {
		total -= runeLen(words[i])
		if i > 0 {
			total--
		}
		if total <= maxLength {
			break
		}
		i--
	}
	return strings.Join(words[:i], " ") + "..."
}
