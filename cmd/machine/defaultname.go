package main

import (
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
)

// defaultMachineName is the machine docker-machine's commands work on when
// none is named (Docker Toolbox made it).
const defaultMachineName = "default"

// withDefaultName returns args, or ["default"] when args is empty and the
// store has a machine of that name; exists says whether it has.
func withDefaultName(args []string, exists func(string) bool) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	if exists(defaultMachineName) {
		return []string{defaultMachineName}, nil
	}
	return nil, usageErr(`No machine name(s) specified and no "default" machine exists`)
}

// defaultToMachine makes cmd (which takes machine names) work on the
// "default" machine when it is given none, as docker-machine does.
func defaultToMachine(g *globals, cmd *cobra.Command) {
	args, run := cmd.Args, cmd.RunE
	cmd.Args = func(c *cobra.Command, a []string) error {
		if len(a) == 0 {
			return nil // decided in RunE, where the store is known
		}
		return args(c, a)
	}
	cmd.RunE = func(c *cobra.Command, a []string) error {
		if len(a) == 0 {
			if unset, _ := c.Flags().GetBool("unset"); unset {
				return run(c, a)
			}
			names, err := withDefaultName(a, func(n string) bool {
				_, err := os.Stat(filepath.Join(g.storagePath, "machines", n, store.ConfigFile))
				return err == nil
			})
			if err != nil {
				return err
			}
			a = names
		}
		return run(c, a)
	}
}
