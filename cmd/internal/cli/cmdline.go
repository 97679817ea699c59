package cli

import (
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// GivenFlag is a flag the user gave, as parsed: its values in order (one
// for a scalar flag).
type GivenFlag struct {
	Name   string
	Bool   bool
	Values []string
}

// elided stands for a sensitive value in a command shoal prints.
const elided = "…"

// CommandLine renders a command as the user would type it again: words
// (the binary and the command), the flags they gave, the arguments, each
// quoted for a POSIX shell. The value of a --var whose variable is in
// sensitive is elided (--var password=…): the user gives it again, or in
// $SHOAL_VAR_password, and it is never printed.
func CommandLine(words []string, flags []GivenFlag, args []string, sensitive map[string]bool) string {
	parts := append([]string(nil), words...)
	for _, f := range flags {
		parts = append(parts, f.words(sensitive)...)
	}
	for _, a := range args {
		parts = append(parts, shell.Word(a))
	}
	return strings.Join(parts, " ")
}

// words are the flag as typed: --name for a true bool, --name=VALUE for
// another, --name VALUE once per value else (a sensitive --var's value
// elided).
func (f GivenFlag) words(sensitive map[string]bool) []string {
	if f.Bool {
		return boolFlagWords(f)
	}
	var parts []string
	for _, v := range f.Values {
		if name, _, ok := strings.Cut(v, "="); ok && f.Name == "var" && sensitive[name] {
			parts = append(parts, "--var", shell.Word(name+"=")+elided)
			continue
		}
		parts = append(parts, "--"+f.Name, shell.Word(v))
	}
	return parts
}

func boolFlagWords(f GivenFlag) []string {
	switch {
	case len(f.Values) != 1:
		return nil
	case f.Values[0] == "true":
		return []string{"--" + f.Name}
	}
	return []string{"--" + f.Name + "=" + shell.Word(f.Values[0])}
}

// hintless flags say how a run shows itself, not what it does: a hint
// leaves them out.
var hintless = map[string]bool{"output": true, "help": true}

// GivenFlags are the flags the user gave to cmd, in name order: all of
// them (own), or only the root's persistent ones (for another command of
// the binary, which has none of cmd's own).
func GivenFlags(cmd *cobra.Command, own bool) []GivenFlag {
	var out []GivenFlag
	root := cmd.Root().PersistentFlags()
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if hintless[f.Name] || !own && root.Lookup(f.Name) == nil {
			return
		}
		g := GivenFlag{Name: f.Name, Bool: f.Value.Type() == "bool"}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			g.Values = sv.GetSlice()
		} else {
			g.Values = []string{f.Value.String()}
		}
		out = append(out, g)
	})
	return out
}
