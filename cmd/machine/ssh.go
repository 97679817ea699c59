package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/spf13/cobra"
)

// remoteCommand joins the remote command's words with spaces: the remote
// login shell reads them, so `machine ssh m1 'echo $HOME'` expands $HOME on
// the machine, as with docker-machine and OpenSSH.
func remoteCommand(words []string) string { return strings.Join(words, " ") }

func newSSH(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh NAME [SSH-OPTIONS] [COMMAND [ARG...]]",
		Short: "Log in to a machine, or run a command on it",
		Long: `Log in to a machine with its key, checking the host key shoal pinned: a
changed host key is refused. As with docker-machine (which runs OpenSSH),
the words right after NAME that are ssh options are ssh's own, and the
remote command starts at the first word that is not one (machine ssh m1 ls
-la /), or after "--". The command's words are joined with spaces and run by
the remote shell; its exit status is machine's.

ssh options shoal's SSH client honours: -t (a pty; -tt even without a
terminal here), -T (none), -A/-a (forward the ssh-agent of $SSH_AUTH_SOCK,
or not), -i FILE (a further key to offer), -p PORT, -L and -R
[bind:]port:host:hostport (TCP forwards, for the time of the session), -D
[bind:]port (a SOCKS5 proxy here, CONNECT only, dialling from the host), -n
(stdin from /dev/null), -N (no command: the forwards until interrupted),
-o Key=Value for Compression, BatchMode, LogLevel,
ForwardAgent, RequestTTY, Port, IdentityFile, ConnectTimeout,
ServerAliveInterval, LocalForward, RemoteForward, DynamicForward. -C, -q,
-v and -x are accepted and change nothing (Go's SSH has no compression; shoal prints no
ssh diagnostics). Any other ssh option (-X, -J, -f, -o StrictHostKeyChecking
...) is refused with an error naming it, never sent to the remote shell.`,
		Example: `  machine ssh m1
  machine ssh m1 ls -la /
  machine ssh m1 -C echo foo
  machine ssh m1 -L 8080:localhost:80 sleep 3600
  machine ssh m1 -t top
  machine ssh m1 -- docker ps -a`,
		Args:              minArgs(1),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "--" {
				args = args[1:] // "machine ssh -- NAME CMD", an older spelling
			}
			if len(args) == 0 {
				return usageErr("machine ssh needs a machine NAME")
			}
			opts, words, err := parseSSHArgs(args[1:])
			if err != nil {
				return usageErr("%v", err)
			}
			return runSSH(cmd, g, args[0], opts, remoteCommand(words))
		},
	}
	// Flags after NAME are ssh's or the remote command's.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// runSSH connects as the options say and runs the session with its forwards.
func runSSH(cmd *cobra.Command, g *globals, name string, opts sshOptions, remote string) error {
	agentSock, err := checkSSHOptions(opts, remote)
	if err != nil {
		return err
	}
	m, mach, err := g.loadMachine(cmd, name)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if err := requireRunning(ctx, mach); err != nil {
		return err
	}
	if opts.ConnectTimeout > 0 {
		m.ConnectTimeout = opts.ConnectTimeout
	}
	c, err := m.ConnectWith(ctx, mach, io.Discard, sshTweak(opts))
	if err != nil {
		return err
	}
	defer c.Close()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := startForwards(fctx, c, opts, cmd.ErrOrStderr()); err != nil {
		return err
	}
	if opts.NoCommand {
		return c.WaitForwarding(ctx)
	}
	so, err := sessionOptions(opts, remote, agentSock)
	if err != nil {
		return err
	}
	in := cmd.InOrStdin()
	if opts.NullStdin {
		in = strings.NewReader("")
	}
	return exitStatus(c.Interactive(ctx, remote, so, in, cmd.OutOrStdout(), cmd.ErrOrStderr()))
}

// checkSSHOptions refuses options that cannot work here before anything
// is connected; it returns the agent socket -A forwards.
func checkSSHOptions(opts sshOptions, remote string) (agentSock string, err error) {
	if opts.NoCommand && (remote != "" || len(opts.Local)+len(opts.Remote)+len(opts.Dynamic) == 0) {
		return "", usageErr("ssh option -N runs no command: give forwards (-L, -R, -D) and no command")
	}
	for _, id := range opts.Identities {
		if _, err := os.Stat(id); err != nil {
			return "", usageErr("ssh option -i: %v", err)
		}
	}
	agentSock = os.Getenv("SSH_AUTH_SOCK")
	if opts.Agent && agentSock == "" {
		return "", usageErr("ssh option -A: $SSH_AUTH_SOCK is empty (no ssh-agent running here)")
	}
	return agentSock, nil
}

// sessionOptions are the session's terminal, agent and subsystem as the
// options say.
func sessionOptions(opts sshOptions, remote, agentSock string) (sshrun.SessionOptions, error) {
	so := sshrun.SessionOptions{PTY: opts.TTY == 2, Terminal: opts.TTY == 1 || (opts.TTY == 0 && remote == "")}
	if opts.Agent {
		so.AgentSocket = agentSock
	}
	if opts.Subsystem {
		if remote == "" {
			return so, usageErr("ssh option -s needs the subsystem's name as the command (machine ssh NAME -s sftp)")
		}
		so.Subsystem, so.Terminal, so.PTY = true, false, false
	}
	return so, nil
}

// exitStatus makes the remote command's exit status machine's own.
func exitStatus(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return &cli.ExitError{Code: code}
	}
	return nil
}

// sshTweak is how the options change the connection's configuration, or
// nil when they do not.
func sshTweak(opts sshOptions) func(*sshrun.Config) {
	// -R and -A need the connection's own global requests and channels
	// from the host, which a kept connection (the keeper) does not carry.
	if len(opts.Identities) == 0 && opts.Port == 0 && opts.KeepAlive == 0 && len(opts.Remote) == 0 && !opts.Agent {
		return nil
	}
	return func(c *sshrun.Config) {
		if opts.Port > 0 {
			c.Port = opts.Port
		}
		if opts.KeepAlive > 0 {
			c.KeepAlive = opts.KeepAlive
		}
		c.ExtraKeyPaths = append(slices.Clone(opts.Identities), c.ExtraKeyPaths...)
	}
}

// startForwards opens the -L listeners here and the -R ones on the host,
// served until ctx ends; one that cannot be opened fails the command, as
// with ExitOnForwardFailure.
func startForwards(ctx context.Context, c *sshrun.Client, opts sshOptions, errOut io.Writer) error {
	for _, f := range opts.Local {
		ln, err := net.Listen("tcp", f.Listen)
		if err != nil {
			return fmt.Errorf("ssh option -L: %w", err)
		}
		go c.ForwardLocal(ctx, ln, f.Target, errOut)
	}
	for _, l := range opts.Dynamic {
		ln, err := net.Listen("tcp", l)
		if err != nil {
			return fmt.Errorf("ssh option -D: %w", err)
		}
		go c.ForwardDynamic(ctx, ln, errOut)
	}
	for _, f := range opts.Remote {
		ln, err := c.ListenRemote(f.Listen)
		if err != nil {
			return fmt.Errorf("ssh option -R: %w", err)
		}
		go sshrun.ServeRemote(ctx, ln, f.Target, errOut)
	}
	return nil
}
