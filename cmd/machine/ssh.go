package main

import (
	"os"
	"strings"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/spf13/cobra"
)

// remoteCommand is what `machine ssh NAME ...` runs: everything after NAME,
// as docker-machine does; a leading "--" (the older spelling) is dropped.
// The words are joined with spaces and the remote login shell reads them,
// so `machine ssh m1 'echo $HOME'` expands $HOME on the machine.
func remoteCommand(rest []string) string {
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	return strings.Join(rest, " ")
}

func newSSH(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh NAME [COMMAND [ARG...]]",
		Short: "Log in to a machine, or run a command on it",
		Long: `Log in to a machine with its key, checking the host key shoal pinned: a
changed host key is refused. Everything after NAME is the remote command,
flags included (machine ssh m1 df -h), as with docker-machine; "--" before
the command is accepted too. The words are joined with spaces and run by the
remote shell. With a command, its exit status is machine's.`,
		Example: `  machine ssh m1
  machine ssh m1 ls -la /
  machine ssh m1 -- docker ps -a`,
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			c, err := connectRunning(cmd.Context(), m, args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			var code int
			if remote := remoteCommand(args[1:]); remote != "" {
				code, err = c.Stream(cmd.Context(), remote, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			} else {
				in, ok := cmd.InOrStdin().(*os.File)
				if !ok {
					return usageErr("an interactive shell needs the terminal as input; give a command to run")
				}
				code, err = c.Shell(cmd.Context(), in, cmd.OutOrStdout(), cmd.ErrOrStderr())
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
	// Flags after NAME belong to the remote command.
	cmd.Flags().SetInterspersed(false)
	return cmd
}
