// Package cli holds what the shoal commands share: exit statuses, the main
// loop with Ctrl-C handling, and the machine manager a command works with.
// It is the commands' composition root: each binary's main builds the driver
// registry once and hands it, with the streams, to the commands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// ExitError carries the exit status: 2 for bad usage or invalid input, 1
// for a failure; a nil Err prints nothing (the command already said it).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Usage is a bad-usage error (exit status 2).
func Usage(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

// Invalid marks err as invalid input (exit status 2).
func Invalid(err error) error { return &ExitError{Code: 2, Err: err} }

// Main runs root on the process's arguments and streams until done or
// interrupted (Ctrl-C cancels the context, so work stops cleanly and the
// next run completes it) and exits with the command's status.
func Main(root *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if len(os.Args) == 3 && os.Args[1] == keeperArg {
		// The SSH keeper a run started (sshrun.ServeKeeper): no command
		// line of the user's, nothing printed.
		err := sshrun.ServeKeeper(ctx, os.Args[2])
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	AddDocs(root)
	InvokedAs(root, os.Args[0])
	code := Run(ctx, root, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run runs root with args and streams and returns the exit status: 0 done,
// 1 failed, 2 bad usage or invalid input. Tests run commands in process
// through it.
func Run(ctx context.Context, root *cobra.Command, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var exit *ExitError
	if errors.As(err, &exit) {
		code = exit.Code
		err = exit.Err
	} else if errors.Is(err, store.ErrInvalidName) {
		code = 2 // a name that cannot be one is bad input wherever it is found
	}
	if err != nil {
		// An error quotes hosts (a stderr tail, a hostname): no escape
		// sequence of theirs reaches the terminal; a tail keeps its lines.
		fmt.Fprintln(stderr, "Error:", ui.Clean(err.Error()))
	}
	return code
}

// IsTerminal tells whether a command's input is a terminal (prompts are
// only shown there).
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Setup makes a root command quiet about usage on errors and makes flag
// errors exit status 2.
func Setup(root *cobra.Command) {
	root.PersistentFlags().Duration(persistFlag, defaultPersist(),
		"keep each machine's SSH connection this long after a run, so the next run logs in to nothing (like OpenSSH's ControlPersist; 0: close it at the end; $SHOAL_SSH_PERSIST)")
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Invalid(err) })
}

// MachineCommand is how the user should type the machine command in the
// hints a command prints: "machine" when that is on the PATH, else the path
// next to the running binary as it was typed (./bin/machine after `make`).
func MachineCommand() string { return commandFor("machine", os.Args[0]) }

// ClusterCommand is how the user runs the cluster command, for hints.
func ClusterCommand() string { return commandFor("cluster", os.Args[0]) }

// commandFor is how the user types command name, given the running
// binary's arg0. The packages install cluster as shoal-cluster (graphviz
// owns /usr/bin/cluster): run under that name, the hints say that name,
// never a "cluster" on the PATH that may be graphviz's.
func commandFor(name, arg0 string) string {
	if filepath.Base(arg0) == "shoal-"+name {
		name = "shoal-" + name
		if _, err := exec.LookPath(name); err != nil && strings.Contains(arg0, "/") {
			return arg0
		}
		return name
	}
	if _, err := exec.LookPath(name); err == nil || !strings.Contains(arg0, "/") {
		return name
	}
	return filepath.Join(filepath.Dir(arg0), name)
}

// Manager opens the store and returns a machine manager whose progress goes
// where --output says: live or plain lines on stderr, or JSON events on
// stdout so that a script reads one stream (events, then the result).
func Manager(cmd *cobra.Command, reg *drivers.Registry, storagePath, output string) (*machine.Manager, error) {
	st, err := store.New(storagePath)
	if err != nil {
		return nil, err
	}
	return managerOf(cmd, reg, st, output, true), nil
}

// ReadOnlyManager is Manager for a command that only looks (cluster plan):
// it creates nothing in the store, not even its folders, pins no host key
// and makes no certificate.
func ReadOnlyManager(cmd *cobra.Command, reg *drivers.Registry, storagePath, output string) (*machine.Manager, error) {
	st, err := store.Open(storagePath)
	if err != nil {
		return nil, err
	}
	// It uses a keeper that runs but starts none.
	m := managerOf(cmd, reg, st, output, false)
	m.ReadOnly = true
	return m, nil
}

func managerOf(cmd *cobra.Command, reg *drivers.Registry, st *store.Store, output string, start bool) *machine.Manager {
	m := machine.NewManager(st, reg)
	m.Keep = keep(cmd, st, start)
	m.Progress = ui.NewProgress(cmd.ErrOrStderr(), output)
	if output == ui.ModeJSON {
		m.Progress = ui.NewProgress(cmd.OutOrStdout(), ui.ModeJSON)
	}
	return m
}

// keeperArg is the hidden first argument that makes a shoal binary the
// SSH keeper.
const keeperArg = "__ssh-keeper"

const persistFlag = "ssh-persist"

// defaultPersist is five minutes, or $SHOAL_SSH_PERSIST when it is a
// duration.
func defaultPersist() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SHOAL_SSH_PERSIST")); err == nil && d >= 0 {
		return d
	}
	return 5 * time.Minute
}

// keep is how the run's SSH connections are kept, nil for not at all.
// start says whether the run may start the keeper.
func keep(cmd *cobra.Command, st *store.Store, start bool) *sshrun.Keep {
	persist, err := cmd.Flags().GetDuration(persistFlag)
	if err != nil || persist <= 0 {
		return nil
	}
	sock := sshrun.KeeperSocket(st.Root)
	if sock == "" {
		return nil
	}
	k := &sshrun.Keep{Socket: sock, Persist: persist}
	// A test binary is not shoal: run as a keeper, it would run its tests.
	if start && !testing.Testing() {
		exe, err := os.Executable()
		if err != nil {
			return nil
		}
		k.Command = []string{exe, keeperArg}
	}
	return k
}
