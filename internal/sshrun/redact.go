package sshrun

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

const redacted = "[REDACTED]"

// longSecret is the length from which a secret that is not a plain word
// is removed wherever it occurs: join tokens, unlock keys and real
// passwords do not occur in output by chance. A plain word is treated so
// from longWord on (password, passwordless are words of shoal's own
// messages).
const (
	longSecret = 8
	longWord   = 16
)

// redactSecret removes one secret from s, in each form it may be written in
// (as is, escaped inside Go/JSON quotes, shell-quoted).
//
// Where a short secret is removed is a choice, since replacing it inside
// ordinary words both garbles diagnostics and gives it away by context
// (password "docker": "[REDACTED] info", "/var/run/[REDACTED].sock"):
//   - a secret of letters only or digits only under longWord, a word like
//     docker, vagrant, password or 123456, is removed only where it stands
//     as a value: a line of its own (how a password on stdin comes back
//     when a command echoes it, the one way shoal sends one), in quotes,
//     after "=" or at the end of a line after ":";
//   - another short secret (s3cret, pw-1) is removed as a whole token,
//     not inside a longer word.
func redactSecret(s, secret string) string {
	for _, f := range secretForms(secret) {
		switch {
		case plainWord(secret) && len(secret) < longWord:
			s = replaceWhere(s, f, standalone)
		case len(secret) >= longSecret:
			s = strings.ReplaceAll(s, f, redacted)
		default:
			s = replaceWhere(s, f, bounded)
		}
	}
	return s
}

// secretForms lists the secret as written, longest first so that a form
// containing another goes whole. A plain word reads the same escaped, and
// standalone covers it in quotes.
func secretForms(secret string) []string {
	if plainWord(secret) {
		return []string{secret}
	}
	q := strconv.Quote(secret)
	j, _ := json.Marshal(secret)
	var out []string
	for _, f := range []string{shell.Quote(secret), q[1 : len(q)-1], string(j[1 : len(j)-1]), secret} {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// plainWord: letters only or digits only (ASCII).
func plainWord(s string) bool {
	letters, digits := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		letters = letters && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
		digits = digits && c >= '0' && c <= '9'
	}
	return letters || digits
}

// replaceWhere replaces the occurrences of f in s at which ok(s, i, j)
// holds, f being s[i:j].
func replaceWhere(s, f string, ok func(s string, i, j int) bool) string {
	var b strings.Builder
	last := 0
	for from := 0; from <= len(s)-len(f); {
		k := strings.Index(s[from:], f)
		if k < 0 {
			break
		}
		i := from + k
		j := i + len(f)
		if ok(s, i, j) {
			b.WriteString(s[last:i])
			b.WriteString(redacted)
			last, from = j, j
			continue
		}
		from = i + 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// bounded: s[i:j] is not part of a longer word.
func bounded(s string, i, j int) bool {
	return (i == 0 || !wordByte(s[i-1])) && (j == len(s) || !wordByte(s[j]))
}

// standalone: s[i:j] stands as a value: alone on its line, in quotes,
// after "=", or after ":" at the end of its line.
func standalone(s string, i, j int) bool {
	before, after := lineAround(s, i, j)
	lead := strings.TrimRight(before, " \t")
	if strings.TrimRight(after, " \t\r") == "" && (lead == "" || strings.HasSuffix(lead, ":")) {
		return true
	}
	if quoted(before, after) {
		return true
	}
	if strings.HasSuffix(lead, "=") || strings.HasSuffix(lead, `="`) || strings.HasSuffix(lead, "='") {
		return after == "" || !wordByte(after[0])
	}
	return false
}

// lineAround is the text of s[i:j]'s line before and after it.
func lineAround(s string, i, j int) (before, after string) {
	before = s[strings.LastIndexByte(s[:i], '\n')+1 : i]
	after = s[j:]
	if k := strings.IndexByte(after, '\n'); k >= 0 {
		after = after[:k]
	}
	return before, after
}

// quoted: the text between before and after is in matching quotes.
func quoted(before, after string) bool {
	if before == "" || after == "" {
		return false
	}
	q := before[len(before)-1]
	return (q == '\'' || q == '"') && after[0] == q
}
