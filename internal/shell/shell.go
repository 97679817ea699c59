// Package shell is the one place that turns values into words of a POSIX
// shell command line. Every value shoal formats into a command that runs on
// a host goes through Quote (or Join): a value that passed validation is
// still quoted, so a gap in validation never becomes a root shell.
package shell

import "strings"

// Quote returns s as one single-quoted POSIX shell word: the shell expands
// nothing inside it. A single quote in s becomes '\”.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each argument and joins them with spaces, a command line
// whose words are exactly args.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Word is Quote for a word that needs it: a word of letters, digits and
// -_./:=+@, only (a package name, a path) stays bare, so that commands in
// logs read naturally.
func Word(s string) string {
	if s == "" {
		return Quote(s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+@,", r)) {
			return Quote(s)
		}
	}
	return s
}

// Words is Join with Word: each argument one word, bare where it can be.
func Words(args ...string) string {
	w := make([]string, len(args))
	for i, a := range args {
		w[i] = Word(a)
	}
	return strings.Join(w, " ")
}
