package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/store"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/cmd/internal/shellenv"
	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// errUnsetWithName is docker-machine's error for `env -u NAME`, with its
// status (1): scripts match both.
var errUnsetWithName = errors.New("Expected no machine name when the -u flag is present")

func newEnv(g *globals) *cobra.Command {
	var shell string
	var unset, swarmFlag, noProxy bool
	cmd := &cobra.Command{
		Use:   "env [--shell SHELL] [--no-proxy] [--swarm] NAME | env --unset",
		Short: "Print the commands that point the docker CLI at a machine",
		Long: `Print the environment that points the docker CLI at a machine over TLS:
DOCKER_TLS_VERIFY, DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_MACHINE_NAME.
While 'machine tunnel NAME' runs (a machine whose engine port is reachable
only through SSH, such as one behind a jump host), DOCKER_HOST is the
tunnel's local port, still over TLS.
With --swarm, DOCKER_HOST is the machine's swarm master. With --no-proxy, the
machine's address is added to no_proxy (or NO_PROXY); with --unset too, that
variable is unset after the four DOCKER_* ones, as docker-machine does. The shell is taken from
$SHELL unless --shell says (` + shellenv.ShellNames + `); every value
is quoted for that shell. A machine that is not running is an error (exit 1,
"Host is not running"), as with docker-machine.`,
		Example: `  eval "$(machine env m1)"
  eval (machine env --shell fish m1)
  eval "$(machine env --unset)"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if unset {
				if len(args) > 0 {
					return errUnsetWithName
				}
				return nil
			}
			return exactArgs(1)(cmd, args)
		},
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if shell == "" {
				shell = shellenv.DetectShell()
			}
			if unset {
				return printUnset(cmd.OutOrStdout(), shell, noProxy)
			}
			return printEnv(cmd, g, args[0], shell, swarmFlag, noProxy)
		},
	}
	cmd.Flags().StringVar(&shell, "shell", "", "shell syntax: "+shellenv.ShellNames+" (default from $SHELL)")
	cmd.Flags().BoolVarP(&unset, "unset", "u", false, "print the commands that unset the variables")
	cmd.Flags().BoolVar(&swarmFlag, "swarm", false, "point at the machine's swarm master")
	cmd.Flags().BoolVar(&noProxy, "no-proxy", false, "add the machine's address to no_proxy (or NO_PROXY)")
	return cmd
}

// printUnset prints the commands that unset the variables env sets.
func printUnset(out io.Writer, shell string, noProxy bool) error {
	text, err := shellenv.UnsetScript(shell, noProxy, os.Getenv, "machine env --unset --shell "+shell)
	if err != nil {
		return cli.Invalid(err)
	}
	fmt.Fprint(out, text)
	return nil
}

// printEnv prints the commands that point the docker CLI at machine name
// (or its swarm master).
func printEnv(cmd *cobra.Command, g *globals, name, shell string, swarm, noProxy bool) error {
	if _, err := shellenv.EnvScript(shell, nil, ""); err != nil {
		return cli.Invalid(err)
	}
	url, dir, target, err := tlsAccess(cmd, g, name, swarm)
	if err != nil {
		return err
	}
	vars := []shellenv.Var{
		{Name: "DOCKER_TLS_VERIFY", Value: "1"}, {Name: "DOCKER_HOST", Value: url},
		{Name: "DOCKER_CERT_PATH", Value: dir}, {Name: "DOCKER_MACHINE_NAME", Value: name},
	}
	if noProxy {
		n, v := shellenv.NoProxy(os.Getenv, target.Address)
		vars = append(vars, shellenv.Var{Name: n, Value: v})
	}
	text, err := shellenv.Script(shell, vars, false, "machine env "+name)
	if err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), text)
	return nil
}

// errNotRunning is docker-machine's answer for a host that is not running.
func errNotRunning(name string, st drivers.State) error {
	return fmt.Errorf("Host is not running: %s is %s (start it with '%s start %s')", name, st, cli.MachineCommand(), name)
}

// requireRunning fails unless the machine's host is running.
func requireRunning(ctx context.Context, mach *machine.Machine) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := mach.Driver.State(ctx)
	if err != nil {
		return fmt.Errorf("%s: state: %w", mach.Name, err)
	}
	if st != drivers.Running {
		return errNotRunning(mach.Name, st)
	}
	return nil
}

// connectRunning loads a machine and opens its SSH connection; a stopped
// host is said at once, not after the SSH wait.
func connectRunning(ctx context.Context, m *machine.Manager, name string) (*sshrun.Client, error) {
	mach, err := m.Load(name)
	if err != nil {
		return nil, err
	}
	if err := requireRunning(ctx, mach); err != nil {
		return nil, err
	}
	return m.Connect(ctx, mach, io.Discard)
}

// swarmMasterOf loads the master of the machine's swarm.
func swarmMasterOf(m *machine.Manager, mach *machine.Machine) (*machine.Machine, error) {
	if mach.Swarm == nil {
		return nil, fmt.Errorf("%s is not in a swarm", mach.Name)
	}
	master, err := m.RootMaster(mach.Machine)
	if err != nil {
		return nil, err
	}
	return m.Load(master.Name)
}

// engineURL is the machine's (or its swarm master's) TLS engine URL, or
// its running tunnel's; the host must be running.
func engineURL(ctx context.Context, m *machine.Manager, name string, toMaster bool, stderr io.Writer) (string, *store.Machine, error) {
	mach, err := m.Load(name)
	if err != nil {
		return "", nil, err
	}
	target := mach
	if toMaster {
		if target, err = swarmMasterOf(m, mach); err != nil {
			return "", nil, err
		}
	}
	url := machine.URL(target.Machine)
	if url == "" {
		return "", nil, fmt.Errorf("%s has no TLS engine URL: it was created with --engine-tls=false or is not provisioned yet", target.Name)
	}
	if err := requireRunning(ctx, target); err != nil {
		return "", nil, err
	}
	return tunnelOr(ctx, target, url, stderr), target.Machine, nil
}

// tunnelOr is the machine's running 'machine tunnel' when there is one,
// else url; a machine behind a jump host without one gets a note on stderr.
func tunnelOr(ctx context.Context, mach *machine.Machine, url string, stderr io.Writer) string {
	t, err := machine.ReadTunnel(mach.Dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v (ignored)\n", mach.Name, err)
	}
	var jump string
	if ep, err := mach.Driver.SSH(ctx); err == nil {
		jump = ep.ProxyJump
	}
	host, note := machine.DockerHost(mach.Name, url, jump, t, t.Alive())
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	return host
}

// tlsAccess is what reaches the machine's engine (with toMaster, its swarm
// master's) over TLS: the URL and the folder of the client certificates.
func tlsAccess(cmd *cobra.Command, g *globals, name string, toMaster bool) (url, certDir string, target *store.Machine, err error) {
	m, err := g.manager(cmd)
	if err != nil {
		return "", "", nil, err
	}
	url, target, err = engineURL(cmd.Context(), m, name, toMaster, cmd.ErrOrStderr())
	if err != nil {
		return "", "", nil, err
	}
	certDir, err = m.ClientCertDir(target)
	if err != nil {
		return "", "", nil, err
	}
	return url, certDir, target, nil
}

func newConfig(g *globals) *cobra.Command {
	var swarmFlag bool
	cmd := &cobra.Command{
		Use:               "config [--swarm] NAME",
		Short:             "Print the docker CLI flags that reach a machine over TLS",
		Example:           `  docker $(machine config m1) node ls`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url, dir, _, err := tlsAccess(cmd, g, args[0], swarmFlag)
			if err != nil {
				return err
			}
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
