package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
)

// completeMachines completes the store's machine names for the first max
// arguments (0: every argument), as docker-machine's bash completion does.
func completeMachines(g *globals, max int) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return machineNames(g.storagePath, args, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// machineNames lists the machines under root starting with prefix, leaving
// out those already typed. It only reads the folder: completion must not
// create a store.
func machineNames(root string, typed []string, prefix string) []string {
	entries, err := os.ReadDir(filepath.Join(root, "machines"))
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, t := range typed {
		seen[t] = true
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && !seen[n] && strings.HasPrefix(n, prefix) && isMachineDir(filepath.Join(root, "machines", n)) {
			out = append(out, n)
		}
	}
	return out
}

// isMachineDir tells a machine's folder: it has the machine's record.
func isMachineDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, store.ConfigFile))
	return err == nil
}

// completeSCP offers NAME: for the machines and local files otherwise.
func completeSCP(g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= 2 || strings.Contains(toComplete, ":") || strings.Contains(toComplete, "/") {
			return nil, cobra.ShellCompDirectiveDefault
		}
		var out []string
		for _, n := range machineNames(g.storagePath, nil, toComplete) {
			out = append(out, n+":")
		}
		return out, cobra.ShellCompDirectiveNoSpace
	}
}

// completeFlags completes the values of the flags that name a machine, a
// driver or a shell.
func completeFlags(g *globals, c *cobra.Command) {
	fixed := func(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	if c.Flags().Lookup("swarm-join") != nil {
		_ = c.RegisterFlagCompletionFunc("swarm-join", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return machineNames(g.storagePath, nil, toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
	if c.Flags().Lookup("driver") != nil {
		_ = c.RegisterFlagCompletionFunc("driver", fixed(append(g.drivers.Names(), "generic")...))
	}
	if c.Flags().Lookup("shell") != nil {
		_ = c.RegisterFlagCompletionFunc("shell", fixed("bash", "zsh", "fish", "tcsh", "powershell", "cmd", "emacs", "sh", "ksh", "dash", "ash"))
	}
}
