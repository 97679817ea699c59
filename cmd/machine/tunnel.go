package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// tunnelTarget is the machine name and its engine's address, once it is
// known to run with a TLS engine and no tunnel.
func tunnelTarget(ctx context.Context, m *machine.Manager, name string) (*machine.Machine, string, error) {
	mach, err := m.Load(name)
	if err != nil {
		return nil, "", err
	}
	url := machine.URL(mach.Machine)
	if url == "" {
		return nil, "", fmt.Errorf("%s has no TLS engine URL: it was created with --engine-tls=false or is not provisioned yet", mach.Name)
	}
	addr, err := machine.EngineAddr(url)
	if err != nil {
		return nil, "", err
	}
	if err := requireRunning(ctx, mach); err != nil {
		return nil, "", err
	}
	if t, _ := machine.ReadTunnel(mach.Dir); t.Alive() {
		return nil, "", fmt.Errorf("%s: a tunnel runs already (127.0.0.1:%d, process %d)", name, t.Port, t.PID)
	}
	return mach, addr, nil
}

func newTunnel(g *globals) *cobra.Command {
	var port int
	cmd := &cobra.Command{
		Use:   "tunnel [--port N] NAME",
		Short: "Forward a local port to a machine's engine over SSH (through its jump hosts)",
		Long: `tunnel forwards 127.0.0.1:PORT to the machine's Docker engine port over
shoal's SSH connection to the machine, through its jump hosts: for a machine
whose engine port is not reachable from here (a host that accepts only SSH,
from a jump host). It keeps running until interrupted (Ctrl-C); while it
runs, 'machine env NAME' points DOCKER_HOST at it. The docker CLI still
speaks TLS with the engine's certificates through it (the engine's
certificate names 127.0.0.1). The machine's sshd must allow TCP forwarding.
Without --port, a free port is taken.`,
		Example: `  machine tunnel edge3 &
  eval "$(machine env edge3)"
  docker ps`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if port < 0 || port > 65535 {
				return cli.Invalid(fmt.Errorf("--port %d: want 1-65535, or 0 for a free one", port))
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			defer m.Close() // the jump host connections
			ctx := cmd.Context()
			mach, addr, err := tunnelTarget(ctx, m, args[0])
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("%s: tunnel: %w", args[0], err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Forwarding %s to the engine of %s (%s) over SSH; Ctrl-C ends it. In another shell:\n", ln.Addr(), args[0], addr)
			fmt.Fprintf(cmd.ErrOrStderr(), "  eval \"$(%s env %s)\"\n", cli.MachineCommand(), shell.Word(args[0]))
			return m.ServeTunnel(ctx, mach, ln, addr)
		},
	}
	cmd.Flags().IntVar(&port, "port", 0, "local port on 127.0.0.1 (default: a free one)")
	return cmd
}
