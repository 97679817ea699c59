package clusterfile

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostics prints diagnostics as FILE:LINE,COL: severity: what,
// with the source line, the way compilers do.
func FormatDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		where := ""
		if d.Subject != nil && d.Subject.Filename != "" {
			where = fmt.Sprintf("%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(w, "%s%s: %s", where, sev, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(w, ": %s", d.Detail)
		}
		fmt.Fprintln(w)
		if line, ok := sourceLine(d, files); ok {
			fmt.Fprintf(w, "    %d | %s\n", d.Subject.Start.Line, line)
		}
	}
}

// sourceLine is the line a diagnostic's subject starts on, from the
// parsed files or else the file on disk, a secret in it masked.
func sourceLine(d *hcl.Diagnostic, files map[string]*hcl.File) (string, bool) {
	if d.Subject == nil {
		return "", false
	}
	var src []byte
	if f, ok := files[d.Subject.Filename]; ok && f != nil {
		src = f.Bytes
	} else if b, err := os.ReadFile(d.Subject.Filename); err == nil {
		src = b
	}
	if src == nil {
		return "", false
	}
	if _, secret := d.Extra.(secretSubject); secret {
		src = maskRange(src, *d.Subject)
	}
	lines := strings.Split(string(src), "\n")
	if l := d.Subject.Start.Line; l >= 1 && l <= len(lines) {
		return lines[l-1], true
	}
	return "", false
}

// secretSubject marks a diagnostic whose subject is a secret written in
// the file (a password): its source line is shown with the value masked.
type secretSubject struct{}

// maskRange replaces the bytes of r in src by "…" (all of the line from
// r's start when r is not within src: nothing of the value is shown).
func maskRange(src []byte, r hcl.Range) []byte {
	start, end := r.Start.Byte, r.End.Byte
	if start < 0 || start > len(src) || end < start || end > len(src) || start == end {
		// The range does not fit this source: mask the rest of its line.
		lines := strings.Split(string(src), "\n")
		if l := r.Start.Line; l >= 1 && l <= len(lines) {
			lines[l-1] = "…"
		}
		return []byte(strings.Join(lines, "\n"))
	}
	out := append([]byte(nil), src[:start]...)
	out = append(out, "…"...)
	return append(out, src[end:]...)
}
