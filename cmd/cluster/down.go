package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDown(g *globals) *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:               "down FILE|NAME",
		Short:             "Take the cluster apart: nodes leave the swarm, machines it made are removed, adopted hosts stay",
		Args:              oneArg,
		ValidArgsFunction: completeFileOrName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := g.openCluster(cmd, args[0])
			if err != nil {
				return err
			}
			defer c.Machines.Close()
			err = c.Down(cmd.Context(), name, purge)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s is down.\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also undo on adopted hosts what provisioning can undo (TLS, daemon.json, /etc/hosts block, cluster keys)")
	return cmd
}
