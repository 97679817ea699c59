package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/cluster"
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
	var acceptNew bool
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
			if acceptNew {
				m.AcceptNewHostKey = map[string]bool{}
				for _, n := range args {
					m.AcceptNewHostKey[n] = true
				}
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
	cmd.Flags().BoolVar(&acceptNew, "accept-new-host-key", false, "take the host at the machine's new address, which offers another key than the one pinned, as the machine's new host (a changed key at an unchanged address stays refused)")
	return cmd
}

// clustersOf maps the named machines that belong to a cluster to its name.
func clustersOf(m *machine.Manager, names []string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		if mach, err := m.Store.Load(n); err == nil && mach.Cluster != "" {
			out[n] = mach.Cluster
		}
	}
	return out
}

// keysToRotate lists, in order, the clusters that lost a machine and keep
// others: a removed machine held the cluster's SSH key, which the others
// still authorize.
func keysToRotate(clusters map[string]string, removed []string, remaining func(cluster string) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range removed {
		c, ok := clusters[n]
		if !ok || seen[c] {
			continue
		}
		seen[c] = true
		if remaining(c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// rotateClusterKeys rotates the SSH key of every cluster that lost a
// machine, on the machines it keeps.
func rotateClusterKeys(cmd *cobra.Command, m *machine.Manager, clusters map[string]string, removed []string) error {
	remaining := func(name string) bool {
		all, err := m.Store.List()
		if err != nil {
			return true // RotateSSHKey says what is wrong
		}
		for _, n := range all {
			if mach, err := m.Store.Load(n); err == nil && mach.Cluster == name {
				return true
			}
		}
		return false
	}
	var errs []error
	for _, name := range keysToRotate(clusters, removed, remaining) {
		c := &cluster.Converger{Machines: m, Parallel: 8}
		if err := c.RotateSSHKey(cmd.Context(), name); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: rotate its SSH key (the removed machine held it; 'cluster rotate --ssh-key' or 'cluster up' finishes it): %w", name, err))
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Rotated the SSH key of cluster %s\n", name)
	}
	return errors.Join(errs...)
}

// confirmRm asks on the terminal before machines are removed; with no
// terminal to ask on, -y is needed.
func confirmRm(cmd *cobra.Command, names []string) error {
	if !cli.IsTerminal(cmd.InOrStdin()) {
		return usageErr("not a terminal to ask on: pass -y to remove %s", strings.Join(names, ", "))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "About to remove %s\nAre you sure? (y/n): ", strings.Join(names, ", "))
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return &cli.ExitError{Code: 1, Err: errors.New("not removed")}
	}
	return nil
}

// removeAll removes the machines in parallel and returns those removed.
func removeAll(ctx context.Context, m *machine.Manager, names []string, force bool) ([]string, error) {
	var mu sync.Mutex
	var removed []string
	err := forEach(ctx, names, func(ctx context.Context, n string) error {
		if err := m.Remove(ctx, n, force); err != nil {
			return err
		}
		mu.Lock()
		removed = append(removed, n)
		mu.Unlock()
		return nil
	})
	return removed, err
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
				if err := confirmRm(cmd, args); err != nil {
					return err
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
			clusters := clustersOf(m, args)
			removed, err := removeAll(cmd.Context(), m, args, force)
			if err == nil {
				for _, n := range args {
					fmt.Fprintf(cmd.OutOrStdout(), "Successfully removed %s\n", n)
				}
			}
			return errors.Join(err, rotateClusterKeys(cmd, m, clusters, removed))
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "forget the machine even when its host cannot be removed; implies -y")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	access.bind(cmd.Flags(), true)
	return cmd
}
