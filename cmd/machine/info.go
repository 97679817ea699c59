package main

import (
	"fmt"
	"text/template"

	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

func newInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [-f TEMPLATE] NAME",
		Short: "Print a machine's configuration as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			mach, err := m.Load(args[0])
			if err != nil {
				return err
			}
			if format == "" {
				return writeJSON(cmd.OutOrStdout(), mach.Machine)
			}
			t, err := template.New("f").Parse(format)
			if err != nil {
				return usageErr("-f: %v", err)
			}
			if err := t.Execute(cmd.OutOrStdout(), mach.Machine); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template over the config (e.g. '{{.Address}}')")
	return cmd
}

func newIP(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ip NAME...",
		Short: "Print machines' IP addresses",
		Args:  minArgs(1),
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
		Use:   "url NAME",
		Short: "Print the Docker Engine URL of a machine",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			mach, err := m.Load(args[0])
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

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Print a machine's state (Running, Stopped, ...)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			st, err := m.State(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), st)
			return nil
		},
	}
}
