package shell

import (
	"os/exec"
	"testing"
)

// The quoted words reach a real sh unchanged, whatever they hold.
func TestQuoteRoundTripThroughSh(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatal("sh is needed: ", err)
	}
	cases := []string{"", "plain", "it's", "''", `a"b`, "$HOME `id` $(id)", `back\slash`, "new\nline",
		"x; touch /tmp/pwned; echo x", "*?[x]", "-n", "tab\there", "\x01\x7f", "ünï"}
	for _, s := range cases {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("Quote(%q): sh printed %q, %v", s, out, err)
		}
	}
	out, err := exec.Command("sh", "-c", `for a in `+Join(cases...)+`; do printf '%s|' "$a"; done`).Output()
	want := ""
	for _, s := range cases {
		want += s + "|"
	}
	if err != nil || string(out) != want {
		t.Errorf("Join: sh printed %q, want %q (%v)", out, want, err)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "'", "x; touch /tmp/pwned; echo x", "$(id)", "a'b'c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		// Unquote by the shell's own rule: outside quotes only '\'' may appear.
		got, rest, inside := []byte{}, q, false
		for len(rest) > 0 {
			switch {
			case rest[0] == '\'':
				inside = !inside
				rest = rest[1:]
			case inside:
				got = append(got, rest[0])
				rest = rest[1:]
			case len(rest) >= 2 && rest[:2] == `\'`:
				got = append(got, '\'')
				rest = rest[2:]
			default:
				t.Fatalf("Quote(%q) = %q: unquoted %q", s, q, rest[0])
			}
		}
		if inside || string(got) != s {
			t.Fatalf("Quote(%q) = %q reads back as %q", s, q, got)
		}
	})
}
