package main

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// engineSetter sets the engine settings whose flags were given.
func engineSetter(fs *pflag.FlagSet, version, install, repoURL string) func(*store.Engine) {
	return func(e *store.Engine) {
		if fs.Changed("engine-version") {
			e.Version = version
		}
		if fs.Changed("engine-install") {
			e.Install = install
		}
		if fs.Changed("engine-repo-url") {
			e.RepoURL = repoURL
		}
	}
}

// upgradeOutcome is upgrade's last line for machine name.
func upgradeOutcome(name string, changed bool) string {
	if changed {
		return name + ": engine changed."
	}
	return name + ": the engine is as its settings say; nothing to change."
}

func newUpgrade(g *globals) *cobra.Command {
	var version, install, repoURL string
	var drainTimeout time.Duration
	var access accessFlags
	cmd := &cobra.Command{
		Use:   "upgrade NAME [--engine-version V] [--engine-install M] [--engine-repo-url URL]",
		Short: "Install the machine's Docker engine again as its settings say, one node's roll in a swarm",
		Long: `upgrade applies the machine's engine settings (changed first by the flags
given): when its engine differs, a machine in a swarm is drained, its tasks
run elsewhere, the engine is installed and dockerd restarted, and once the
node is Ready it is made what it was (active) and its tasks spread back; a
machine in no swarm is just provisioned. A machine whose engine is right is
not touched. A failure leaves the node drained and says what to type.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := access.manager(g, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			set := engineSetter(cmd.Flags(), version, install, repoURL)
			resume := cli.CommandLine([]string{cli.MachineCommand(), "upgrade"}, cli.GivenFlags(cmd, true), args, nil)
			changed, err := m.Upgrade(cmd.Context(), args[0], set, drainTimeout, resume)
			m.Progress.Close()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), upgradeOutcome(args[0], changed))
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "engine-version", "", "the engine version to install (e.g. 24.0.9, or 24.0)")
	cmd.Flags().StringVar(&install, "engine-install", "", "auto, repo, distro or skip")
	cmd.Flags().StringVar(&repoURL, "engine-repo-url", "", "the package repository (docker-ce mirror; with distro on Debian an apt repository of docker.io)")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "how long its tasks may take to run elsewhere")
	access.bind(cmd.Flags(), true)
	return cmd
}
