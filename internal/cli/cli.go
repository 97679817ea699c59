// Package cli holds what the shoal commands share: exit statuses and the
// main loop with Ctrl-C handling.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/shoal-dev/shoal/drivers/all"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
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

// Main runs root until done or interrupted (Ctrl-C cancels the context, so
// work stops cleanly and the next run completes it) and exits with the
// command's status.
func Main(root *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err == nil {
		return
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
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(code)
}

// Setup makes a root command quiet about usage on errors and makes flag
// errors exit status 2.
func Setup(root *cobra.Command) {
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Invalid(err) })
}

// MachineCommand is how the user should type the machine command in the
// hints a command prints: "machine" when that is on the PATH, else the path
// next to the running binary as it was typed (./bin/machine after `make`).
func MachineCommand() string {
	if _, err := exec.LookPath("machine"); err == nil || !strings.Contains(os.Args[0], "/") {
		return "machine"
	}
	return filepath.Join(filepath.Dir(os.Args[0]), "machine")
}

// Manager opens the store and returns a machine manager whose progress goes
// where --output says: live or plain lines on stderr, or JSON events on
// stdout so that a script reads one stream (events, then the result).
func Manager(cmd *cobra.Command, storagePath, output string) (*machine.Manager, error) {
	st, err := store.New(storagePath)
	if err != nil {
		return nil, err
	}
	return managerOf(cmd, st, output), nil
}

// ReadOnlyManager is Manager for a command that only looks (cluster plan):
// it creates nothing in the store, not even its folders, pins no host key
// and makes no certificate.
func ReadOnlyManager(cmd *cobra.Command, storagePath, output string) (*machine.Manager, error) {
	st, err := store.Open(storagePath)
	if err != nil {
		return nil, err
	}
	m := managerOf(cmd, st, output)
	m.ReadOnly = true
	return m, nil
}

func managerOf(cmd *cobra.Command, st *store.Store, output string) *machine.Manager {
	m := machine.NewManager(st, all.Registry())
	m.Progress = ui.NewProgress(cmd.ErrOrStderr(), output)
	if output == ui.ModeJSON {
		m.Progress = ui.NewProgress(cmd.OutOrStdout(), ui.ModeJSON)
	}
	return m
}
