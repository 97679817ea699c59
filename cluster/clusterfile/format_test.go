package clusterfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestFormatDiagnosticsFromLoad(t *testing.T) {
	path := writeFile(t, `cluster "c" {}
machine "m" {
  role = "boss"
}
`)
	spec, diags := Load(path, Options{}, allDrivers())
	if spec != nil || !diags.HasErrors() {
		t.Fatal("want an error")
	}
	var buf bytes.Buffer
	FormatDiagnostics(&buf, diags, nil)
	out := buf.String()
	wantFirst := path + `:3,10: error: Invalid role: machine "m": role must be "manager" or "worker", not "boss"`
	lines := strings.Split(out, "\n")
	if lines[0] != wantFirst {
		t.Errorf("first line = %q\nwant        %q", lines[0], wantFirst)
	}
	if len(lines) < 2 || lines[1] != `    3 |   role = "boss"` {
		t.Errorf("source line = %q, want the file's line 3", lines[1])
	}
}

func TestFormatDiagnostics(t *testing.T) {
	src := []byte("line one\nline two\nline three\n")
	files := map[string]*hcl.File{"a.hcl": {Bytes: src}}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Bad thing", Detail: "it is bad",
			Subject: &hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 2, Column: 6}, End: hcl.Pos{Line: 2, Column: 9}}},
		{Severity: hcl.DiagWarning, Summary: "Odd thing",
			Subject: &hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 3, Column: 1}}},
		{Severity: hcl.DiagError, Summary: "No place", Detail: "anywhere"},
		{Severity: hcl.DiagError, Summary: "Past the end",
			Subject: &hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 99, Column: 1}}},
	}
	var buf bytes.Buffer
	FormatDiagnostics(&buf, diags, files)
	want := "a.hcl:2,6: error: Bad thing: it is bad\n" +
		"    2 | line two\n" +
		"a.hcl:3,1: warning: Odd thing\n" +
		"    3 | line three\n" +
		"error: No place: anywhere\n" +
		"a.hcl:99,1: error: Past the end\n"
	if buf.String() != want {
		t.Errorf("FormatDiagnostics =\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestFormatDiagnosticsReadsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vars.hcl")
	if err := os.WriteFile(path, []byte("a = 1\nnope = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	FormatDiagnostics(&buf, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Undeclared variable",
		Subject: &hcl.Range{Filename: path, Start: hcl.Pos{Line: 2, Column: 1}}}}, map[string]*hcl.File{})
	if !strings.Contains(buf.String(), "    2 | nope = 2\n") {
		t.Errorf("source of a file not in files: %q", buf.String())
	}
}

func TestFormatDiagnosticsOfAVarFile(t *testing.T) {
	src := `cluster "c" {}
variable "n" {
  default = 1
}
machine "m" {
  role = "manager"
}
`
	vf := filepath.Join(t.TempDir(), "v.hcl")
	if err := os.WriteFile(vf, []byte("n = 2\nx = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(writeFile(t, src), Options{VarFiles: []string{vf}}, allDrivers())
	var buf bytes.Buffer
	FormatDiagnostics(&buf, diags, nil)
	if !strings.HasPrefix(buf.String(), vf+":2,1: error: Undeclared variable") || !strings.Contains(buf.String(), "    2 | x = 3\n") {
		t.Errorf("FormatDiagnostics = %q", buf.String())
	}
}
