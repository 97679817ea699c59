package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

func newEnv(g *globals) *cobra.Command {
	var shell string
	var unset, swarmFlag bool
	cmd := &cobra.Command{
		Use:   "env [--shell bash|zsh|fish|powershell|cmd|tcsh] [--unset] [--swarm] NAME",
		Short: "Print the commands that point the docker CLI at a machine",
		Long: `Print the environment that points the docker CLI at a machine over TLS:
DOCKER_TLS_VERIFY, DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_MACHINE_NAME.
With --swarm, DOCKER_HOST is the machine's swarm master. The shell is taken
from $SHELL unless --shell says.`,
		Example: `  eval "$(machine env m1)"
  eval (machine env --shell fish m1)
  eval "$(machine env --unset)"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if unset {
				return nil
			}
			return exactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if shell == "" {
				shell = machine.DetectShell()
			}
			out := cmd.OutOrStdout()
			if unset {
				text, err := machine.EnvScript(shell, nil, "machine env --unset --shell "+shell)
				if err != nil {
					return cli.Invalid(err)
				}
				fmt.Fprint(out, text)
				return nil
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			url, err := engineURL(cmd.Context(), m, args[0], swarmFlag)
			if err != nil {
				return err
			}
			text, err := machine.EnvScript(shell, []string{"1", url, m.Store.CertsDir(), args[0]}, "machine env "+args[0])
			if err != nil {
				return cli.Invalid(err)
			}
			fmt.Fprint(out, text)
			return nil
		},
	}
	cmd.Flags().StringVar(&shell, "shell", "", "shell syntax: bash, zsh, fish, powershell, cmd, tcsh (default from $SHELL)")
	cmd.Flags().BoolVarP(&unset, "unset", "u", false, "print the commands that unset the variables")
	cmd.Flags().BoolVar(&swarmFlag, "swarm", false, "point at the machine's swarm master")
	return cmd
}

// engineURL is the machine's (or its swarm master's) TLS engine URL.
func engineURL(_ context.Context, m *machine.Manager, name string, toMaster bool) (string, error) {
	mach, err := m.Load(name)
	if err != nil {
		return "", err
	}
	target := mach.Machine
	if toMaster {
		if mach.Swarm == nil {
			return "", fmt.Errorf("%s is not in a swarm", name)
		}
		master, err := m.RootMaster(mach.Machine)
		if err != nil {
			return "", err
		}
		target = master
	}
	url := machine.URL(target)
	if url == "" {
		return "", fmt.Errorf("%s has no TLS engine URL: it was created with --engine-tls=false or is not provisioned yet", target.Name)
	}
	return url, nil
}

func newConfig(g *globals) *cobra.Command {
	var swarmFlag bool
	cmd := &cobra.Command{
		Use:     "config [--swarm] NAME",
		Short:   "Print the docker CLI flags that reach a machine over TLS",
		Example: `  docker $(machine config m1) node ls`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			url, err := engineURL(cmd.Context(), m, args[0], swarmFlag)
			if err != nil {
				return err
			}
			dir := m.Store.CertsDir()
			printConfig(cmd.OutOrStdout(), dir, url)
			return nil
		},
	}
	cmd.Flags().BoolVar(&swarmFlag, "swarm", false, "the machine's swarm master")
	return cmd
}

func printConfig(w io.Writer, dir, url string) {
	q := func(p string) string { return strings.ReplaceAll(p, `"`, `\"`) }
	fmt.Fprintf(w, "--tlsverify\n--tlscacert=\"%s\"\n--tlscert=\"%s\"\n--tlskey=\"%s\"\n-H=%s\n",
		q(filepath.Join(dir, certs.CAFile)), q(filepath.Join(dir, certs.ClientFile)), q(filepath.Join(dir, certs.ClientKeyFile)), url)
}

func newRegenerateCerts(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "regenerate-certs NAME...",
		Short: "Issue new server certificates and install them (dockerd restarts)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			defer m.Progress.Close()
			return forEach(cmd.Context(), args, m.RegenerateCerts)
		},
	}
}
