package main

import (
	"context"
	"io"
	"time"

	"github.com/shoal-dev/shoal/bootstrap/dataplane"
	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/spf13/cobra"
)

func addCheckFlags(cmd *cobra.Command, o *cluster.CheckOptions) {
	cmd.Flags().DurationVar(&o.Timeout, "check-timeout", cluster.DefaultCheckTimeout, "how long the probe's tasks may take to start, and then how long the probe may run (the check runs it twice when the first run fails)")
	cmd.Flags().StringVar(&o.Image, "check-image", dataplane.DefaultImage, "the probe's image: one every node has (nothing is pulled)")
	cmd.Flags().IntVar(&o.OverlayMTU, "overlay-mtu", 0, "MTU of the probe's overlay network (0: Docker's default, 1450); set it to the swarm's overlay_mtu")
}

func newCheck(g *globals) *cobra.Command {
	var o cluster.CheckOptions
	cmd := &cobra.Command{
		Use:   "check FILE|NAME",
		Short: "Test the swarm's data plane node to node and name the cause of each fault (exit status 1 on a fault)",
		Long: `check reads each node's kernel, firewall and interface facts, then runs a
short-lived probe (a global service on a temporary overlay network, labelled
io.shoal.check and removed at the end) that pings every ordered pair of nodes
with small and full-MTU packets and resolves the service's names. NAME is a
cluster, or the master of a swarm made with 'machine create --swarm-master'.

Exit status 0: everything the swarm offers works (a LIMIT line says what the
hosts' kernel cannot do at all, e.g. no IP_VS); 1: a FAULT (see docs/troubleshooting.md).`,
		Args:              oneArg,
		ValidArgsFunction: completeFileOrName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := g.openCluster(cmd, args[0])
			if err != nil {
				return err
			}
			if g.output == ui.ModeJSON {
				// stdout is one JSON document: no progress events on it.
				c.Machines.Progress = ui.NewProgress(cmd.ErrOrStderr(), ui.ModeQuiet)
			}
			defer c.Machines.Close()
			rep, err := c.Check(cmd.Context(), name, o)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			if err := printCheck(cmd.OutOrStdout(), g.output, name, rep); err != nil {
				return err
			}
			if !rep.OK {
				return &cli.ExitError{Code: 1}
			}
			return nil
		},
	}
	addCheckFlags(cmd, &o)
	return cmd
}

// printCheck prints the report as the output mode says: one JSON
// document, or writeCheck's.
func printCheck(out io.Writer, mode, name string, rep *dataplane.Report) error {
	if mode == ui.ModeJSON {
		return writeJSON(out, map[string]any{"cluster": name, "check": rep})
	}
	writeCheck(out, rep, mode == ui.ModeAuto && ui.IsTerminal(out))
	return nil
}

// writeCheck writes the report: the matrix on a terminal, plain lines in
// a pipe.
func writeCheck(w io.Writer, rep *dataplane.Report, tty bool) {
	if tty {
		dataplane.WriteMatrix(w, rep)
	} else {
		dataplane.WriteLines(w, rep)
	}
	dataplane.WriteFindings(w, rep)
}

// checkAfterUp runs the check after a 'cluster up' that changed the swarm.
func checkAfterUp(ctx context.Context, c *cluster.Converger, name string, o cluster.CheckOptions) (*dataplane.Report, time.Duration, error) {
	start := time.Now()
	rep, err := c.Check(ctx, name, o)
	return rep, time.Since(start), err
}
