package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// shellSyntax says how one shell sets and unsets a variable.
type shellSyntax struct {
	set, unset, hint string
}

var shells = map[string]shellSyntax{
	"bash":       {`export %s="%s"`, `unset %s`, `eval "$(%s)"`},
	"zsh":        {`export %s="%s"`, `unset %s`, `eval "$(%s)"`},
	"fish":       {`set -gx %s "%s";`, `set -e %s;`, `eval (%s)`},
	"tcsh":       {`setenv %s "%s";`, `unsetenv %s;`, "eval `%s`"},
	"powershell": {`$Env:%s = "%s"`, `Remove-Item Env:\\%s`, `& %s | Invoke-Expression`},
	"cmd":        {`SET %s=%s`, `SET %s=`, `@FOR /f "tokens=*" %%i IN ('%s') DO @%%i`},
}

func detectShell() string {
	base := filepath.Base(os.Getenv("SHELL"))
	switch base {
	case "fish", "zsh", "tcsh", "bash":
		return base
	case "csh":
		return "tcsh"
	}
	return "bash"
}

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
				shell = detectShell()
			}
			syn, ok := shells[shell]
			if !ok {
				return usageErr("--shell %q: want bash, zsh, fish, powershell, cmd or tcsh", shell)
			}
			out := cmd.OutOrStdout()
			vars := []string{"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"}
			self := "machine env"
			if unset {
				for _, v := range vars {
					fmt.Fprintf(out, syn.unset+"\n", v)
				}
				fmt.Fprintf(out, "# Run this command to configure your shell:\n# "+syn.hint+"\n", self+" --unset --shell "+shell)
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
			values := []string{"1", url, m.Store.CertsDir(), args[0]}
			for i, v := range vars {
				fmt.Fprintf(out, syn.set+"\n", v, values[i])
			}
			fmt.Fprintf(out, "# Run this command to configure your shell:\n# "+syn.hint+"\n", self+" "+args[0])
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
