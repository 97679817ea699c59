package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/shoal-dev/shoal/provision/osfamily"
)

// The facts probe reads root-only files whose text provisioning needs
// (repository files with credentials in their URLs, drop-ins and
// daemon.json with proxy passwords) and the SSH transcript would keep a
// copy of each in provision.log. The log keeps what a reader needs instead:
// each file's path, size and sha256.

// contentSections are the probe's sections that hold files' text. The
// value is the prefix of the lines that name a file in the section (its
// text follows each), "" when the section is one file's text.
var contentSections = map[string]string{
	"daemon-json": "",
	"dropin":      "",
	"unit":        "# /",
	"yum-repos":   osfamily.RepoFileMarker,
}

var (
	markerLine = regexp.MustCompile(`^@@([0-9a-f]{16,}) ([a-z0-9-]+)\r?$`)
	// A repository URL's user:password@ (repo-reach prints the servers).
	userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@`)
	cutLine  = regexp.MustCompile(`^\[\.\.\. \d+ bytes cut \.\.\.\]\r?$`)
)

// NewTranscript returns a transcript writer that keeps files' text out of
// w (nil for none). The SSH client writes each entry whole, in one Write.
func NewTranscript(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return transcriptWriter{w}
}

type transcriptWriter struct{ w io.Writer }

func (t transcriptWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(t.w, hideFileContents(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hideFileContents rewrites a transcript entry: the text of each file a
// facts probe printed becomes one line with its size and sha256, and the
// servers' credentials in repository URLs go. Text that is not a probe's
// output stays as it is.
func hideFileContents(entry string) string {
	if !strings.Contains(entry, "@@") {
		return entry
	}
	lines := strings.SplitAfter(entry, "\n")
	var h contentHider
	tail := tailStart(lines)
	for i, l := range lines {
		if i >= tail {
			h.flush()
			h.section = ""
		}
		h.line(l, lines[i:])
	}
	h.flush()
	return h.out.String()
}

// contentHider is hideFileContents's state: the probe's nonce, the section
// it is in and the current file's lines, not yet written.
type contentHider struct {
	out            strings.Builder
	nonce, section string
	body           []string
}

// flush writes the current file's lines as their digest.
func (h *contentHider) flush() {
	if len(h.body) > 0 {
		h.out.WriteString(digestLine(strings.Join(h.body, "")))
		h.body = h.body[:0]
	}
}

// line reads l, rest being the entry's lines from l on.
func (h *contentHider) line(l string, rest []string) {
	text := strings.TrimSuffix(l, "\n")
	if m := markerLine.FindStringSubmatch(text); m != nil && (h.nonce == "" || m[1] == h.nonce) {
		h.flush()
		h.nonce, h.section = m[1], m[2]
		h.out.WriteString(l)
		return
	}
	if h.nonce == "" && cutLine.MatchString(text) && strings.Contains(strings.Join(rest, ""), "@@") {
		// The stream's start was cut: what is left of the first
		// section(s) before a marker cannot be told apart.
		h.section = "(cut)"
		h.out.WriteString(l)
		return
	}
	if h.section == "" {
		h.out.WriteString(l)
		return
	}
	h.sectionLine(l)
}

// sectionLine reads a line of a probe's section: a file's text is kept
// for its digest, a file's header (the section's prefix) written, and
// the reach section's URLs lose their credentials.
func (h *contentHider) sectionLine(l string) {
	prefix, hidden := contentSections[h.section]
	switch {
	case h.section == "(cut)":
		h.body = append(h.body, l)
	case h.section == "repo-reach":
		h.out.WriteString(userinfo.ReplaceAllString(l, "$1[REDACTED]@"))
	case !hidden:
		h.out.WriteString(l)
	case prefix != "" && strings.HasPrefix(l, prefix):
		h.flush()
		h.out.WriteString(l)
	default:
		h.body = append(h.body, l)
	}
}

// tailStart is the index of the entry's closing lines: its stderr
// ("stderr: " lines) and its status ("--- exit 0 after 1s"), which follow
// the output; a probe that ended early leaves no end marker to stop at.
func tailStart(lines []string) int {
	i := len(lines)
	if i > 0 && lines[i-1] == "" {
		i--
	}
	if i > 0 && strings.HasPrefix(lines[i-1], "--- ") {
		i--
		for i > 0 && strings.HasPrefix(lines[i-1], "stderr: ") {
			i--
		}
	}
	return i
}

// digestLine stands for a file's text in the transcript.
func digestLine(text string) string {
	sum := sha256.Sum256([]byte(text))
	return fmt.Sprintf("(%d bytes, sha256 %s: not logged)\n", len(text), hex.EncodeToString(sum[:]))
}
