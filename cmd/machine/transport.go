package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

// transportCommand is the hidden command rsync (-e) and sshfs
// (-o ssh_command) run as their "ssh": OpenSSH's command line, options
// before and after the host, over shoal's own client, so the machine's key
// and pinned host key are used with no OpenSSH configuration.
const transportCommand = "ssh-transport"

func newSSHTransport(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    transportCommand + " [SSH-OPTIONS] [--] NAME [SSH-OPTIONS] [COMMAND...]",
		Short:  "ssh for rsync and sshfs (scp -d, mount): OpenSSH's command line over shoal's client",
		Hidden: true,
		// Every word is ssh's: options before NAME included.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, opts, words, err := parseTransportArgs(args)
			if err != nil {
				return usageErr("%v", err)
			}
			return runSSH(cmd, g, name, opts, remoteCommand(words))
		},
	}
}

// parseTransportArgs reads `ssh [opts] [--] HOST [opts] [CMD...]`, as
// OpenSSH does (sshfs puts its options and "--" before the host).
func parseTransportArgs(args []string) (string, sshOptions, []string, error) {
	var o sshOptions
	rest, err := o.parse(args)
	if err != nil {
		return "", o, nil, err
	}
	if len(rest) == 0 {
		return "", o, nil, errors.New("no machine name")
	}
	if err := store.ValidateName(rest[0]); err != nil {
		return "", o, nil, err
	}
	words, err := o.parse(rest[1:])
	return rest[0], o, words, err
}

// transportEnv is the environment rsync and sshfs run with: the store
// this command uses, so the transport they start finds the machine.
func transportEnv(storage string) []string {
	return append(os.Environ(), "SHOAL_STORAGE_PATH="+storage)
}

// transportArgv is the transport command line: this program's path and
// the hidden command. sshfs splits ssh_command at blanks, so a path with
// one is refused rather than cut.
func transportArgv() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(exe, " \t\n\\'\"") {
		return "", fmt.Errorf("this program's path %q has a blank or quote, which rsync's -e and sshfs's ssh_command cannot carry: run it from a path without", exe)
	}
	return exe + " " + transportCommand, nil
}

// missingTool says which package gives a program this command needs.
func missingTool(what, prog, pkg string) error {
	hint := "apt-get install " + shell.Word(pkg) + ", dnf install " + shell.Word(pkg)
	if runtime.GOOS == "darwin" {
		hint = "brew install " + pkg
		if pkg == "sshfs" {
			hint = "macFUSE and sshfs from https://osxfuse.github.io"
		}
	}
	return &cli.ExitError{Code: 1, Err: fmt.Errorf("%s needs %s on this computer, which is not installed (or not on $PATH): install the %s package (%s)", what, prog, pkg, hint)}
}

// rsyncArgs is docker-machine's scp --delta command line: rsync with
// --progress unless quiet, the transport as its remote shell, -r when
// recursive, SRC and DST (one of them NAME:PATH).
func rsyncArgs(transport, src, dst string, recursive, quiet bool) []string {
	var a []string
	if !quiet {
		a = append(a, "--progress")
	}
	a = append(a, "-e", transport)
	if recursive {
		a = append(a, "-r")
	}
	return append(a, src, dst)
}

// rsyncSpec is a remote side of rsync: NAME:PATH with PATH as splitSpec
// made it ("." for the home folder, relative to it otherwise).
func rsyncSpec(name, p string) string {
	if name == "" {
		return p
	}
	return name + ":" + p
}

// runDelta is `machine scp -d`: rsync over the transport, between this
// computer and one machine, which needs rsync too.
func runDelta(cmd *cobra.Command, g *globals, srcName, src, dstName, dst string, recursive, quiet bool) error {
	if srcName != "" && dstName != "" {
		return usageErr("scp -d copies between this computer and one machine (rsync has no remote-to-remote copy): copy without -d, or in two steps")
	}
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		return missingTool("machine scp -d", "rsync", "rsync")
	}
	transport, err := transportArgv()
	if err != nil {
		return err
	}
	name := srcName + dstName
	m, err := g.manager(cmd)
	if err != nil {
		return err
	}
	if err := remoteRsync(cmd.Context(), m, name); err != nil {
		return err
	}
	x := exec.CommandContext(cmd.Context(), rsync, rsyncArgs(transport, rsyncSpec(srcName, src), rsyncSpec(dstName, dst), recursive, quiet)...)
	x.Env = transportEnv(m.Store.Root)
	x.Stdin, x.Stdout, x.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	return exitOf("rsync", x.Run())
}

// remoteRsync checks that the machine has rsync too.
func remoteRsync(ctx context.Context, m *machine.Manager, name string) error {
	c, err := connectRunning(ctx, m, name)
	if err != nil {
		return err
	}
	res, err := c.Run(ctx, "command -v rsync")
	c.Close()
	if err != nil || len(strings.TrimSpace(string(res.Stdout))) == 0 {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("%s: machine scp -d needs rsync on the machine too, which is not installed there: install it (machine ssh %s sudo apt-get install -y rsync, or dnf install rsync)", name, shell.Word(name))}
	}
	return nil
}

// exitOf passes a tool's exit status on, as docker-machine's does.
func exitOf(tool string, err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &cli.ExitError{Code: ee.ExitCode(), Err: fmt.Errorf("%s exited with status %d", tool, ee.ExitCode())}
	}
	return err
}

// mountArgs is docker-machine's mount command line: sshfs NAME:PATH DIR
// (sshfs over the transport), or, unmounting, fusermount -u DIR.
func mountArgs(transport, name, p, dir string, unmount bool) []string {
	if unmount {
		return []string{"-u", dir}
	}
	return []string{"-o", "ssh_command=" + transport, name + ":" + p, dir}
}

// mountSpec reads docker-machine's [NAME:]PATH (no name: "default") and
// the local folder, which defaults to PATH, as docker-machine's does.
func mountSpec(src, dir string) (name, p, local string, err error) {
	name, p = defaultMachineName, src
	if n, rest, ok := strings.Cut(src, ":"); ok {
		name, p = n, rest
	}
	if err := store.ValidateName(name); err != nil {
		return "", "", "", err
	}
	if p == "" {
		return "", "", "", fmt.Errorf("%q: no path on the machine", src)
	}
	if dir == "" {
		dir = path.Clean(p)
	}
	return name, p, dir, nil
}

func newMount(g *globals) *cobra.Command {
	var unmount bool
	cmd := &cobra.Command{
		Use:   "mount [-u] [NAME:]PATH [DIR]",
		Short: "Mount a machine's folder here with sshfs (as docker-machine mount)",
		Long: `Mount PATH of machine NAME (default: "default") on the local folder DIR
(default: PATH) with sshfs, which reaches the machine over shoal's own SSH
client (its key and pinned host key); -u unmounts it (fusermount -u). sshfs
and FUSE must be installed here; the machine needs only sshd's sftp.`,
		Example: `  mkdir -p ./m1-tmp && machine mount m1:/tmp ./m1-tmp
  machine mount -u m1:/tmp ./m1-tmp`,
		Args:              rangeArgs(1, 2),
		ValidArgsFunction: completeMachines(g, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dir string
			if len(args) > 1 {
				dir = args[1]
			}
			name, p, dir, err := mountSpec(args[0], dir)
			if err != nil {
				return cli.Invalid(err)
			}
			return runMount(cmd, g, name, p, dir, unmount)
		},
	}
	cmd.Flags().BoolVarP(&unmount, "unmount", "u", false, "unmount")
	return cmd
}

// mountTool is the program that mounts (sshfs) or unmounts (fusermount3,
// else fusermount), and the package that has it.
func mountTool(unmount bool) (prog, pkg string) {
	if !unmount {
		return "sshfs", "sshfs"
	}
	if _, err := exec.LookPath("fusermount3"); err == nil {
		return "fusermount3", "fuse3"
	}
	return "fusermount", "fuse3"
}

func runMount(cmd *cobra.Command, g *globals, name, p, dir string, unmount bool) error {
	prog, pkg := mountTool(unmount)
	bin, err := exec.LookPath(prog)
	if err != nil {
		return missingTool("machine mount", prog, pkg)
	}
	transport, err := transportArgv()
	if err != nil {
		return err
	}
	m, err := g.manager(cmd)
	if err != nil {
		return err
	}
	if !unmount {
		if _, err := m.Load(name); err != nil {
			return err
		}
	}
	x := exec.CommandContext(cmd.Context(), bin, mountArgs(transport, name, p, dir, unmount)...)
	x.Env = transportEnv(m.Store.Root)
	x.Stdin, x.Stdout, x.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	return exitOf(prog, x.Run())
}
