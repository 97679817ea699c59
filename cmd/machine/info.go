package main

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/drivers"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

func newInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [-f TEMPLATE] NAME",
		Short: "Print a machine's configuration as JSON",
		Long: `Print the machine's shoal configuration (config.json) as JSON, or with
--format a Go template over it: docker-machine's field names work there
(.Driver.IPAddress, .HostOptions.EngineOptions.Labels, ...), as do shoal's.`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, mach, err := g.loadMachine(cmd, args[0])
			if err != nil {
				return err
			}
			if format == "" {
				return writeJSON(cmd.OutOrStdout(), mach.Machine)
			}
			t, err := parseTemplate("format", format)
			if err != nil {
				return err
			}
			if err := t.Execute(cmd.OutOrStdout(), newDMHost(m.Store, mach.Machine)); err != nil {
				return cli.Invalid(fmt.Errorf("--format: %w", err))
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template: docker-machine's fields (.Name .DriverName .Driver.IPAddress .Driver.SSHUser\n.Driver.SSHPort .HostOptions.EngineOptions...) and shoal's config (.Address .SSH.User);\nfunctions json and prettyjson, e.g. '{{json .HostOptions.EngineOptions}}'")
	return cmd
}

func newIP(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "ip NAME...",
		Short:             "Print machines' IP addresses",
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			for _, n := range args {
				mach, err := m.Load(n)
				if err != nil {
					return err
				}
				if mach.Address == "" {
					return fmt.Errorf("%s has no known address yet (was it provisioned?)", n)
				}
				fmt.Fprintln(cmd.OutOrStdout(), mach.Address)
			}
			return nil
		},
	}
}

func newURL(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "url NAME",
		Short:             "Print the Docker Engine URL of a machine",
		Args:              exactArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, mach, err := g.loadMachine(cmd, args[0])
			if err != nil {
				return err
			}
			u := machine.URL(mach.Machine)
			if u == "" {
				return fmt.Errorf("%s has no TCP engine URL (created with --engine-tls=false, or not provisioned)", args[0])
			}
			if err := requireRunning(cmd.Context(), mach); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			return nil
		},
	}
}

// swarmLocked tells a machine whose swarm manager is locked (asked
// within 20 seconds).
func swarmLocked(ctx context.Context, m *machine.Manager, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sw, err := m.SwarmState(ctx, name)
	return err == nil && sw == "locked"
}

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "status NAME",
		Short:             "Print a machine's state (Running, Stopped, ...)",
		Args:              exactArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			st, err := m.State(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// A locked swarm manager says so: it runs, but is not usable.
			if st == drivers.Running && swarmLocked(cmd.Context(), m, args[0]) {
				fmt.Fprintln(cmd.OutOrStdout(), "Running (swarm locked)")
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), st)
			return nil
		},
	}
}
