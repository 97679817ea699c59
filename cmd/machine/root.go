package main

import (
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func usageErr(format string, a ...any) error { return cli.Usage(format, a...) }

// globals are the flags every command shares.
type globals struct {
	// drivers are the drivers compiled in, built once by main.
	drivers     *drivers.Registry
	storagePath string
	output      string
	nativeSSH   bool
	debug       bool
}

func (g *globals) manager(cmd *cobra.Command) (*machine.Manager, error) {
	m, err := cli.Manager(cmd, g.drivers, g.storagePath, g.output)
	if m != nil {
		// The step that takes a machine's new host (docs/access.md).
		m.NewHostStep = func(name string) string {
			return cli.MachineCommand() + " provision --accept-new-host-key " + shell.Word(name)
		}
	}
	return m, err
}

// loadMachine is the manager and the machine NAME.
func (g *globals) loadMachine(cmd *cobra.Command, name string) (*machine.Manager, *machine.Machine, error) {
	m, err := g.manager(cmd)
	if err != nil {
		return nil, nil, err
	}
	mach, err := m.Load(name)
	if err != nil {
		return nil, nil, err
	}
	return m, mach, nil
}

func newRoot(reg *drivers.Registry) *cobra.Command {
	g := &globals{drivers: reg}
	root := &cobra.Command{
		Use:   "machine",
		Short: "Make or adopt Docker hosts and join them into a Swarm",
		Long: `machine makes a host (a container on the local Docker Engine, a libvirt or
VirtualBox VM) or adopts one over SSH, provisions it as a Docker node
(hostname, /etc/hosts, docker user, Docker installed, daemon.json merged,
TLS), and with --swarm-master / --swarm-join puts it in a Swarm with a
private registry.

docker-machine's commands and flags work as its users expect (see the
README's "Coming from docker-machine"). Given no machine name, env, ssh, ip,
url, status, inspect, config, start, stop, restart, kill, provision and
regenerate-certs work on the machine named "default", as docker-machine's do.`,
	}
	cli.Setup(root)
	root.Version = version
	root.SetVersionTemplate("machine (shoal) {{.Version}}\n")
	root.PersistentFlags().StringVarP(&g.storagePath, "storage-path", "s", store.DefaultRoot(), "where shoal keeps machines, keys and certificates ($SHOAL_STORAGE_PATH)")
	root.PersistentFlags().BoolVarP(&g.debug, "debug", "D", false, "accepted for docker-machine's scripts: each machine's last provisioning transcript is in machines/NAME/provision.log")
	root.PersistentFlags().BoolVar(&g.nativeSSH, "native-ssh", false, "accepted for docker-machine's scripts: shoal always uses its built-in Go SSH client")
	root.PersistentFlags().StringVar(&g.output, "output", ui.ModeAuto, "progress and results: auto (live lines on a terminal), plain, json")
	root.AddCommand(
		newCreate(g), newLs(g), newInspect(g), newIP(g), newURL(g), newStatus(g),
		newSSH(g), newSCP(g), newRm(g), newProvision(g), newVersion(g), newActive(g), newImport(g),
		newEnv(g), newConfig(g), newTunnel(g), newRegenerateCerts(g), newUpgrade(g),
		newMount(g), newSSHTransport(g),
		newLifecycle(g, "start", "Start machines", (*machine.Manager).Start),
		newLifecycle(g, "stop", "Stop machines", (*machine.Manager).Stop),
		newLifecycle(g, "restart", "Restart machines", (*machine.Manager).Restart),
		newLifecycle(g, "kill", "Power machines off at once", (*machine.Manager).Kill),
	)
	// docker-machine's commands that take one or more names work on the
	// "default" machine when given none.
	for _, c := range root.Commands() {
		completeFlags(g, c)
		switch c.Name() {
		case "env", "ssh", "ip", "url", "status", "inspect", "config", "start", "stop", "restart", "kill", "provision", "regenerate-certs":
			defaultToMachine(g, c)
		}
	}
	return root
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%q takes %d argument(s), got %d; see '%s --help'", cmd.CommandPath(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageErr("%q takes %d to %d arguments, got %d; see '%s --help'", cmd.CommandPath(), lo, hi, len(args), cmd.CommandPath())
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErr("%q needs at least %d machine name(s); see '%s --help'", cmd.CommandPath(), n, cmd.CommandPath())
		}
		return nil
	}
}
