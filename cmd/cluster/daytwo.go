package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/spf13/cobra"
)

func newUpgrade(g *globals) *cobra.Command {
	var drainTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade FILE",
		Short: "Apply only the engine settings of FILE (install, version, repo_url), one node at a time",
		Long: `upgrade installs the Docker engine that FILE's engine blocks ask for on the
machines of the cluster whose engine differs, one node at a time: drain, wait
until its tasks run elsewhere, install, restart dockerd, wait until the node is
Ready, make it what it was (active), wait for the tasks, then the next node.
Managers go one at a time with the Raft quorum kept (the leader last), workers
in batches of swarm { max_unavailable } (default 1). A node whose engine is
already right is not touched. The first failure stops the roll and leaves that
node drained; running upgrade (or up) again resumes. 'cluster up' does the same
roll as part of converging the whole file.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := g.load(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := g.converger(cmd)
			if err != nil {
				return err
			}
			c.DrainTimeout = drainTimeout
			res, err := c.Upgrade(cmd.Context(), spec)
			c.M.Progress.Close()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return writeJSON(out, res)
			}
			if len(res.Rolled) == 0 {
				fmt.Fprintf(out, "Cluster %s: every engine is as the file says; nothing to change.\n", res.Cluster)
				return nil
			}
			fmt.Fprintf(out, "Cluster %s: engines changed on %s (order: %s).\n", res.Cluster, strings.Join(res.Rolled, ", "), res.Order)
			return nil
		},
	}
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", cluster.DefaultDrainTimeout, "how long a node may take to have its tasks run elsewhere, and the tasks to run again")
	return cmd
}
