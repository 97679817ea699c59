package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// forEach runs f on every name in parallel and joins the errors.
func forEach(ctx context.Context, names []string, f func(ctx context.Context, name string) error) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newLifecycle makes start, stop, restart or kill. Start (and restart)
// installs a new certificate when the address changed, which needs root on
// the host: they take the access flags.
func newLifecycle(g *globals, verb, short string, f func(*machine.Manager, context.Context, string) error) *cobra.Command {
	var access accessFlags
	cmd := &cobra.Command{
		Use:               verb + " NAME...",
		Short:             short,
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := access.manager(g, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			defer m.Progress.Close()
			return forEach(cmd.Context(), args, func(ctx context.Context, n string) error { return f(m, ctx, n) })
		},
	}
	if verb == "start" || verb == "restart" {
		access.bind(cmd.Flags(), true)
	}
	return cmd
}

func newProvision(g *globals) *cobra.Command {
	var access accessFlags
	cmd := &cobra.Command{
		Use:               "provision NAME...",
		Short:             "Provision machines again (changes only what differs)",
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := access.manager(g, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			defer m.Progress.Close()
			return forEach(cmd.Context(), args, func(ctx context.Context, n string) error {
				_, err := m.Provision(ctx, n)
				return err
			})
		},
	}
	access.bind(cmd.Flags(), true)
	return cmd
}

func newRm(g *globals) *cobra.Command {
	var force, yes bool
	var access accessFlags
	cmd := &cobra.Command{
		Use:               "rm [-f] [-y] NAME...",
		Aliases:           []string{"remove"},
		Short:             "Remove machines (an adopted host is left as it is, only forgotten)",
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			// -f implies -y, as in docker-machine.
			if !yes && !force {
				if !cli.IsTerminal(cmd.InOrStdin()) {
					return usageErr("not a terminal to ask on: pass -y to remove %s", strings.Join(args, ", "))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "About to remove %s\nAre you sure? (y/n): ", strings.Join(args, ", "))
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return &cli.ExitError{Code: 1, Err: errors.New("not removed")}
				}
			}
			// Leaving a swarm goes through the engine, which may need sudo.
			m, err := access.manager(g, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			if g.output == ui.ModeAuto {
				m.Progress = ui.NewProgress(cmd.ErrOrStderr(), ui.ModePlain)
			}
			defer m.Progress.Close()
			err = forEach(cmd.Context(), args, func(ctx context.Context, n string) error { return m.Remove(ctx, n, force) })
			if err == nil {
				for _, n := range args {
					fmt.Fprintf(cmd.OutOrStdout(), "Successfully removed %s\n", n)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "forget the machine even when its host cannot be removed; implies -y")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	access.bind(cmd.Flags(), true)
	return cmd
}
