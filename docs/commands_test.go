package docs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The commands are package main (cmd/machine, cmd/cluster) and export no
// constructor, so the test builds both binaries and reads the command tree
// from their --help, as a user sees it.
func buildCLIs(t *testing.T) string {
	t.Helper()
	// go test puts its own go first on the PATH of the tests it runs.
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/machine", "./cmd/cluster")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// subcommands reads the names under "Available Commands:" of a --help text.
func subcommands(help string) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in && strings.HasPrefix(line, "  "):
			out = append(out, strings.Fields(line)[0])
		}
	}
	return out
}

// commandTree lists every command path of the binary bin ("machine create",
// "machine completion bash", ...), from its --help and its commands'.
func commandTree(t *testing.T, bin string) []string {
	t.Helper()
	var walk func(path []string) []string
	walk = func(path []string) []string {
		cmd := exec.Command(bin, append(path[1:], "--help")...)
		cmd.Env = append(os.Environ(), "SHOAL_STORAGE_PATH="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s --help: %v", strings.Join(path, " "), err)
		}
		var all []string
		for _, sub := range subcommands(string(out)) {
			p := append(append([]string{}, path...), sub)
			all = append(all, strings.Join(p, " "))
			all = append(all, walk(p)...)
		}
		return all
	}
	return walk([]string{filepath.Base(bin)})
}

// undocumented lists the command paths no page names. A path is named as
// written ("cluster up"), and a subcommand may be one of a list of
// alternatives ("machine completion bash|zsh|fish"; in a table's cell the
// bars are escaped, bash\|zsh).
func undocumented(paths []string, text string) []string {
	var out []string
	for _, p := range paths {
		words := strings.Fields(p)
		last := regexp.QuoteMeta(words[len(words)-1])
		head := regexp.QuoteMeta(strings.Join(words[:len(words)-1], " "))
		re := regexp.MustCompile(`(?:^|[^\w-])` + head + ` (?:[\w-]+\\?\|)*` + last + `(?:$|[^\w-])`)
		if !re.MatchString(text) {
			out = append(out, p)
		}
	}
	return out
}

// Every command and subcommand of both binaries is named in some page of docs/.
func TestEveryCommandIsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	var docs strings.Builder
	for _, p := range readPages(t, repoRoot(t)) {
		if strings.HasPrefix(p.path, "docs/") {
			docs.WriteString(p.text)
			docs.WriteString("\n")
		}
	}
	dir := buildCLIs(t)
	for _, name := range []string{"machine", "cluster"} {
		tree := commandTree(t, filepath.Join(dir, name))
		if len(tree) < 10 {
			t.Fatalf("%s: only %d commands read from --help: %v", name, len(tree), tree)
		}
		for _, p := range undocumented(tree, docs.String()) {
			t.Errorf("no page of docs/ names `%s`", p)
		}
	}
}

func TestUndocumentedCatchesAMissingCommand(t *testing.T) {
	text := "`machine create`, `machine completion bash|zsh|fish`, `cluster up FILE`, machine regenerate-certs, | `cluster completion bash\\|zsh` |"
	paths := []string{"machine create", "machine completion bash", "machine completion fish", "cluster up", "cluster completion zsh",
		"machine regenerate-certs", "machine completion powershell", "cluster upgrade", "machine regenerate", "machine certs"}
	got := undocumented(paths, text)
	want := []string{"machine completion powershell", "cluster upgrade", "machine regenerate", "machine certs"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("undocumented = %v, want %v", got, want)
	}
	help := "Usage:\n  m [command]\n\nAvailable Commands:\n  create      Create\n  ls          List\n\nFlags:\n  -h, --help\n"
	if got := subcommands(help); strings.Join(got, ",") != "create,ls" {
		t.Errorf("subcommands = %v", got)
	}
}
