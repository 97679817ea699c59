package main

import (
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/spf13/cobra"
)

// commandLines renders, for hints, the command the user ran on file (verb
// is cmd's own name) or another command of the binary on the same file
// with the same root flags (--var, --var-file, --storage-path, ...).
func commandLines(cmd *cobra.Command, file string, sensitive map[string]bool) func(verb string) string {
	return func(verb string) string {
		return cli.CommandLine([]string{cli.ClusterCommand(), verb}, cli.GivenFlags(cmd, verb == cmd.Name()), []string{file}, sensitive)
	}
}
