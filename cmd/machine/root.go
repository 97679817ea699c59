package main

import (
	"fmt"

	"github.com/shoal-dev/shoal/internal/cli"
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
	storagePath string
	output      string
}

func (g *globals) manager(cmd *cobra.Command) (*machine.Manager, error) {
	return cli.Manager(cmd, g.storagePath, g.output)
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "machine",
		Short: "Make or adopt Docker hosts and join them into a Swarm",
		Long: `machine makes a host (a container on the local Docker Engine, a libvirt or
VirtualBox VM) or adopts one over SSH, provisions it as a Docker node
(hostname, /etc/hosts, docker user, Docker installed, daemon.json merged,
TLS), and with --swarm-master / --swarm-join puts it in a Swarm with a
private registry.`,
	}
	cli.Setup(root)
	root.PersistentFlags().StringVarP(&g.storagePath, "storage-path", "s", store.DefaultRoot(), "where shoal keeps machines, keys and certificates ($MACHINE_STORAGE_PATH)")
	root.PersistentFlags().StringVar(&g.output, "output", ui.ModeAuto, "progress and results: auto (live lines on a terminal), plain, json")
	root.AddCommand(
		newCreate(g), newLs(g), newInspect(g), newIP(g), newURL(g), newStatus(g),
		newSSH(g), newSCP(g), newRm(g), newProvision(g), newVersion(),
		newEnv(g), newConfig(g), newRegenerateCerts(g), newUpgrade(g),
		newLifecycle(g, "start", "Start machines", (*machine.Manager).Start),
		newLifecycle(g, "stop", "Stop machines", (*machine.Manager).Stop),
		newLifecycle(g, "restart", "Restart machines", (*machine.Manager).Restart),
		newLifecycle(g, "kill", "Power machines off at once", (*machine.Manager).Kill),
	)
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "machine (shoal)", version)
			return nil
		},
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr("%q takes %d argument(s), got %d; see '%s --help'", cmd.CommandPath(), n, len(args), cmd.CommandPath())
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
