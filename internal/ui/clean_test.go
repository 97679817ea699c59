package ui

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	cases := []struct{ in, clean, line string }{
		{"Ubuntu 24.04 LTS", "Ubuntu 24.04 LTS", "Ubuntu 24.04 LTS"},
		{"", "", ""},
		{"tab\there\nnext", "tab\there\nnext", "tab here next"},
		{"crlf\r\nline", "crlf\nline", "crlf line"},
		// Colours, cursor moves, a clear screen.
		{"\x1b[31mred\x1b[0m", "red", "red"},
		{"a\x1b[2J\x1b[1;1Hb", "ab", "ab"},
		{"\x1b[?25lhidden", "hidden", "hidden"},
		// A window title (OSC) ended by BEL or by ST, and a hyperlink.
		{"x\x1b]0;pwned\x07y", "xy", "xy"},
		{"x\x1b]2;pwned\x1b\\y", "xy", "xy"},
		{"\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", "link", "link"},
		// DCS, and an OSC that never ends (it would swallow the rest on a terminal).
		{"a\x1bPq#0;2;0;0;0\x1b\\b", "ab", "ab"},
		{"a\x1b]0;title", "a", "a"},
		// Two-byte escapes: reset, charset.
		{"a\x1bcb\x1b(Bc", "abc", "abc"},
		{"trailing\x1b", "trailing", "trailing"},
		// 8-bit CSI and OSC, other C1, C0, DEL.
		{"a\u009b31mb", "ab", "ab"},
		{"a\u009d0;t\u009cb", "ab", "ab"},
		{"a\u0085b\u008ec", "abc", "abc"},
		{"bell\x07back\x08space\x00nul\x7f", "bellbackspacenul", "bellbackspacenul"},
		// Invalid UTF-8 (a raw 0x9b is CSI to a Latin-1 terminal).
		{"a\x9b31mb", "a\uFFFD31mb", "a\uFFFD31mb"},
		// Bidi overrides reorder what the operator reads.
		{"admin\u202Etxt.exe", "admintxt.exe", "admintxt.exe"},
		{"héllo wörld ✓", "héllo wörld ✓", "héllo wörld ✓"},
	}
	for _, c := range cases {
		if got := Clean(c.in); got != c.clean {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.clean)
		}
		if got := CleanLine(c.in); got != c.line {
			t.Errorf("CleanLine(%q) = %q, want %q", c.in, got, c.line)
		}
	}
}

// What a terminal would act on never gets through.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred", "\x1b]0;t\x07", "a\u009bb", "\r\n\t", "\xff\x9b", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, line := range []bool{false, true} {
			out := clean(s, line)
			if !utf8.ValidString(out) {
				t.Fatalf("clean(%q, %v) = %q: invalid UTF-8", s, line, out)
			}
			for _, r := range out {
				ok := r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) && !isBidi(r) || !line && (r == '\t' || r == '\n')
				if !ok {
					t.Fatalf("clean(%q, %v) = %q keeps %U", s, line, out, r)
				}
			}
			if again := clean(out, line); again != out {
				t.Fatalf("clean is not idempotent on %q: %q then %q", s, out, again)
			}
			if len(out) > len(s)*3 {
				t.Fatalf("clean(%q) grew to %d bytes", s, len(out))
			}
		}
		if !strings.ContainsAny(s, "\x1b\r\x00\x07\x7f") && isPlain(s, false) && Clean(s) != s {
			t.Fatalf("plain text changed: %q", s)
		}
	})
}

func TestTableRow(t *testing.T) {
	var b strings.Builder
	TableRow(&b, "m1", "tab\there", "\x1b[31mred\x1b[0m", "two\nlines")
	if want := "m1\ttab here\tred\ttwo lines\n"; b.String() != want {
		t.Errorf("TableRow = %q, want %q", b.String(), want)
	}
}
