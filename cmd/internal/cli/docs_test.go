package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestCommandFor(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing of that name on the PATH
	for _, tc := range []struct{ name, arg0, want string }{
		{"cluster", "cluster", "cluster"},
		{"cluster", "./bin/cluster", "bin/cluster"},
		{"cluster", "shoal-cluster", "shoal-cluster"},
		// The packages' name: never a bare "cluster" (graphviz's).
		{"cluster", "/opt/x/shoal-cluster", "/opt/x/shoal-cluster"},
		{"machine", "/opt/x/shoal-cluster", "/opt/x/machine"},
	} {
		if got := commandFor(tc.name, tc.arg0); got != tc.want {
			t.Errorf("commandFor(%q, %q) = %q, want %q", tc.name, tc.arg0, got, tc.want)
		}
	}
}

func TestInvokedAs(t *testing.T) {
	for arg0, want := range map[string]string{"/usr/bin/shoal-cluster": "shoal-cluster", "cluster": "cluster", "/usr/bin/other": "cluster"} {
		root := &cobra.Command{Use: "cluster [command]"}
		InvokedAs(root, arg0)
		if root.Name() != want {
			t.Errorf("run as %s: name %q, want %q", arg0, root.Name(), want)
		}
	}
}

// The hidden __docs command writes a man page per command and the three
// completion scripts, under the name given.
func TestDocsCommand(t *testing.T) {
	root := &cobra.Command{Use: "cluster", Short: "c"}
	root.AddCommand(&cobra.Command{Use: "up FILE", Short: "converge", Run: func(*cobra.Command, []string) {}})
	AddDocs(root)
	dir := t.TempDir()
	args := []string{DocsCommand, "--name", "shoal-cluster", "--man", filepath.Join(dir, "man"),
		"--completion", filepath.Join(dir, "comp"), "--date", "1700000000", "--source", "shoal 1.2.3"}
	if code := Run(context.Background(), root, args, nil, io.Discard, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	up, err := os.ReadFile(filepath.Join(dir, "man", "shoal-cluster-up.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shoal-cluster up", "Nov 2023", "shoal 1.2.3", "converge"} {
		if !strings.Contains(string(up), want) {
			t.Errorf("man page lacks %q:\n%s", want, up)
		}
	}
	for _, f := range []string{"bash/shoal-cluster", "zsh/_shoal-cluster", "fish/shoal-cluster.fish"} {
		if fi, err := os.Stat(filepath.Join(dir, "comp", f)); err != nil || fi.Size() == 0 {
			t.Errorf("completion %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "shoal-cluster-__docs.1")); err == nil {
		t.Errorf("the hidden command has a man page")
	}
	if code := Run(context.Background(), root, []string{DocsCommand, "--name", "a b"}, nil, io.Discard, io.Discard); code != 2 {
		t.Errorf("--name 'a b': exit %d, want 2", code)
	}
}
