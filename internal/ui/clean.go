package ui

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Clean makes text that came from a host (os-release's PRETTY_NAME, a
// stderr tail, a hostname) safe to print on the operator's terminal: it
// drops escape sequences (CSI, OSC, DCS and the like, in their 7-bit and
// 8-bit forms), every other C0 and C1 control character, DEL and Unicode's
// bidirectional overrides, and makes invalid UTF-8 U+FFFD. Tabs and
// newlines stay, so that a multi-line tail still reads as one; a carriage
// return goes (CRLF ends a line as LF does, and a lone CR would let the
// host overwrite what shoal printed).
func Clean(s string) string { return clean(s, false) }

// CleanLine is Clean for text that must stay on one line or in one table
// cell: tabs and newlines become spaces.
func CleanLine(s string) string { return clean(s, true) }

// Bytes of the 7-bit escape sequences that matter here.
const (
	esc = 0x1b
	bel = 0x07
)

func clean(s string, line bool) string {
	if isPlain(s, line) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if next, ok := skipControl(s, i+n, r); ok {
			i = next
			continue
		}
		writeClean(&b, r, n, line)
		i += n
	}
	return b.String()
}

// skipControl returns the index after the escape sequence or control
// string that r, ending just before i, starts; false when r starts none.
func skipControl(s string, i int, r rune) (int, bool) {
	switch {
	case r == esc:
		return skipEscape(s, i), true
	case r == 0x9b: // CSI
		return skipCSI(s, i), true
	case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // DCS SOS OSC PM APC
		return skipString(s, i), true
	}
	return i, false
}

// writeClean writes r (n bytes of the input) as clean does: invalid UTF-8
// as U+FFFD, tabs and newlines (as spaces for a line), no other control.
func writeClean(b *strings.Builder, r rune, n int, line bool) {
	switch {
	case r == utf8.RuneError && n <= 1:
		b.WriteRune(utf8.RuneError)
	case r == '\t' || r == '\n':
		if line {
			r = ' '
		}
		b.WriteRune(r)
	case r < 0x20 || r >= 0x7f && r < 0xa0 || isBidi(r):
		// dropped
	default:
		b.WriteRune(r)
	}
}

// isPlain tells whether s needs no change (the common case: no copy).
func isPlain(s string, line bool) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return needsCleaning(r, line) })
}

// needsCleaning tells a rune clean changes: a control character (but a
// tab or newline outside a line), DEL and C1, invalid UTF-8, a
// bidirectional override.
func needsCleaning(r rune, line bool) bool {
	return r < 0x20 && (line || r != '\t' && r != '\n') || r >= 0x7f && r < 0xa0 || r == utf8.RuneError || isBidi(r)
}

// isBidi tells whether r reorders the text around it (the "Trojan
// Source" characters).
func isBidi(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// skipEscape returns the index after the escape sequence whose ESC ends
// just before i.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(s, i+1)
	}
	// ESC, intermediate bytes, one final byte (ESC c, ESC ( B).
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipCSI skips a control sequence's parameter and intermediate bytes and
// its final byte; it stops at anything else, which is then read as text.
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString skips a control string (OSC's title, DCS) up to and with its
// terminator: BEL, ESC \ or the 8-bit ST. One that never ends takes the
// rest of s with it, as it would on a terminal.
func skipString(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == bel || r == 0x9c:
			return i + n
		case r == esc:
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i // another sequence starts: read it as one
		}
		i += n
	}
	return i
}

// TableRow writes one row of a tabwriter table: each cell on one line
// (CleanLine: a host's tab or newline would shift or split the columns),
// tab-separated.
func TableRow(w io.Writer, cells ...string) {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(CleanLine(c))
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(w, b.String())
}
