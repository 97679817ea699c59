package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// DocsCommand is the hidden command the release build (build/dist) runs on
// the built binary: the man pages and completion scripts come from the
// command tree itself, so they never drift from --help.
const DocsCommand = "__docs"

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)

// AddDocs adds the hidden __docs command to root.
func AddDocs(root *cobra.Command) {
	var name, manDir, compDir, source string
	var epoch int64
	cmd := &cobra.Command{
		Use:    DocsCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if name != "" {
				if !nameRE.MatchString(name) {
					return Invalid(fmt.Errorf("--name %q: not a command name", name))
				}
				Rename(root, name)
			}
			return writeDocs(root, manDir, compDir, source, time.Unix(epoch, 0).UTC())
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the command's name as installed (default: its own)")
	f.StringVar(&manDir, "man", "", "write a man page per command (section 1) here")
	f.StringVar(&compDir, "completion", "", "write bash, zsh and fish completion here")
	f.StringVar(&source, "source", "shoal", "the man pages' source line (shoal VERSION)")
	f.Int64Var(&epoch, "date", 0, "the man pages' date, seconds since 1970 (SOURCE_DATE_EPOCH)")
	root.AddCommand(cmd)
}

// Rename makes root's name (in its Use, its help and its completion) name.
func Rename(root *cobra.Command, name string) {
	root.Use = name + strings.TrimPrefix(root.Use, root.Name())
}

// InvokedAs renames root when the binary runs under the packages' name
// for it (shoal-cluster: graphviz owns /usr/bin/cluster, see
// docs/install.md), so that --help says what the user typed.
func InvokedAs(root *cobra.Command, arg0 string) {
	if base := filepath.Base(arg0); base == "shoal-"+root.Name() {
		Rename(root, base)
	}
}

func writeDocs(root *cobra.Command, manDir, compDir, source string, date time.Time) error {
	root.DisableAutoGenTag = true
	if manDir != "" {
		if err := os.MkdirAll(manDir, 0o755); err != nil {
			return err
		}
		hdr := &doc.GenManHeader{Section: "1", Date: &date, Source: source, Manual: "shoal manual"}
		if err := doc.GenManTree(root, hdr, manDir); err != nil {
			return fmt.Errorf("man pages in %s: %w", manDir, err)
		}
	}
	if compDir == "" {
		return nil
	}
	n := root.Name()
	gens := []struct {
		dir, file string
		gen       func(*os.File) error
	}{
		{"bash", n, func(w *os.File) error { return root.GenBashCompletionV2(w, true) }},
		{"zsh", "_" + n, func(w *os.File) error { return root.GenZshCompletion(w) }},
		{"fish", n + ".fish", func(w *os.File) error { return root.GenFishCompletion(w, true) }},
	}
	for _, g := range gens {
		if err := writeWith(filepath.Join(compDir, g.dir, g.file), g.gen); err != nil {
			return err
		}
	}
	return nil
}

func writeWith(path string, gen func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
