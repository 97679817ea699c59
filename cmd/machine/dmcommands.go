package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// Commands docker-machine users type that shoal had no use for itself.

// runsAt tells whether machine n's engine URL is host and it runs (asked
// within timeout).
func runsAt(ctx context.Context, m *machine.Manager, n, host string, timeout time.Duration) bool {
	mach, err := m.Load(n)
	if err != nil || machine.URL(mach.Machine) != host {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := mach.Driver.State(ctx)
	return err == nil && st == drivers.Running
}

func newActive(g *globals) *cobra.Command {
	timeout := timeoutValue(10 * time.Second)
	cmd := &cobra.Command{
		Use:   "active",
		Short: "Print the name of the machine $DOCKER_HOST points at",
		Long: `Print the name of the running machine whose engine URL is $DOCKER_HOST (set
by 'machine env'). Exit status 1 with "No active host found" when there is none.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			host := os.Getenv("DOCKER_HOST")
			if host == "" {
				return errors.New("No active host found")
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			names, err := m.Store.List()
			if err != nil {
				return err
			}
			for _, n := range names {
				if runsAt(cmd.Context(), m, n, host, time.Duration(timeout)) {
					fmt.Fprintln(cmd.OutOrStdout(), n)
					return nil
				}
			}
			return errors.New("No active host found")
		},
	}
	cmd.Flags().VarP(&timeout, "timeout", "t", "how long to ask each machine's state: seconds or a duration")
	return cmd
}

func newVersion(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version [NAME]",
		Short: "Print machine's version, or the Docker Engine version of machine NAME",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("%q takes at most one machine name; see '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "machine (shoal)", version)
				return nil
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			c, err := connectRunning(cmd.Context(), m, args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			const q = "docker version --format '{{.Server.Version}}'"
			res, err := c.RunSudo(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("%s: %s: %w: %s", args[0], q, err, strings.TrimSpace(string(res.Stderr)))
			}
			fmt.Fprintln(cmd.OutOrStdout(), ui.CleanLine(strings.TrimSpace(string(res.Stdout))))
			return nil
		},
	}
}

// confirmRegenerate asks on a terminal whether to go ahead; elsewhere it
// goes ahead.
func confirmRegenerate(cmd *cobra.Command, names []string) bool {
	if !cli.IsTerminal(cmd.InOrStdin()) {
		return true
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Regenerate TLS machine certs for %s? dockerd restarts. (y/n): ", strings.Join(names, ", "))
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

// newClientCert removes the store's client certificate and has EnsureCA
// issue it again (the CA stays).
func newClientCert(m *machine.Manager) error {
	dir := m.Store.CertsDir()
	for _, f := range []string{certs.ClientFile, certs.ClientKeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	_, err := m.CA()
	return err
}

func newRegenerateCerts(g *globals) *cobra.Command {
	var force, clientCerts bool
	var access accessFlags
	cmd := &cobra.Command{
		Use:   "regenerate-certs [-f] [--client-certs] NAME...",
		Short: "Issue new server certificates and install them (dockerd restarts)",
		Long: `Issue new server certificates from the store's CA and install them; dockerd
restarts. On a terminal it asks first unless -f; elsewhere it goes ahead (the
machine keeps its CA, so nothing else has to change).
--client-certs also issues a new client certificate (certs/cert.pem, key.pem).
Unlike docker-machine it keeps the CA: all machines of a store share it and
would otherwise all need new certificates.`,
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirmRegenerate(cmd, args) {
				return &cli.ExitError{Code: 1, Err: errors.New("certificates not regenerated")}
			}
			m, err := access.manager(g, cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			defer m.Progress.Close()
			for _, n := range args {
				if _, err := m.Load(n); err != nil {
					return err
				}
			}
			if clientCerts {
				if err := newClientCert(m); err != nil {
					return err
				}
			}
			return forEach(cmd.Context(), args, m.RegenerateCerts)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask")
	cmd.Flags().BoolVar(&clientCerts, "client-certs", false, "also issue a new client certificate (the CA stays)")
	access.bind(cmd.Flags(), true)
	return cmd
}
