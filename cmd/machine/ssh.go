package main

import (
	"io"
	"os"
	"strings"

	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/spf13/cobra"
)

func newSSH(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh NAME [-- COMMAND...]",
		Short: "Log in to a machine, or run a command on it",
		Long: `Log in to a machine with its key, checking the host key shoal pinned: a
changed host key is refused. With a command, its exit status is machine's.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			mach, err := m.Load(args[0])
			if err != nil {
				return err
			}
			c, err := m.Connect(cmd.Context(), mach, io.Discard)
			if err != nil {
				return err
			}
			defer c.Close()
			var code int
			if len(args) > 1 {
				code, err = c.Stream(cmd.Context(), strings.Join(args[1:], " "), os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
			} else {
				code, err = c.Shell(cmd.Context(), os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return &cli.ExitError{Code: code}
			}
			return nil
		},
	}
	return cmd
}
