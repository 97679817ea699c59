package drivertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/validate"
)

// conformanceTimeout bounds each step of the suite: drivers backed by fakes
// answer in milliseconds, a real VM may take minutes (go test's -timeout
// still applies on top).
const conformanceTimeout = 10 * time.Minute

// Conformance checks the behaviour every driver promises (drivers.Driver's
// doc): Create is idempotent and leaves a running host with a well-formed
// SSH endpoint, Stop and Kill stop it, Start starts it, Stop on a stopped
// host and Remove on a missing one succeed, State tells NotFound after
// Remove, a cancelled context fails fast.
//
// newDriver must return a driver for a new machine each time it is called
// (its own name and folder), with nothing created yet. Drivers that adopt a
// host rather than make one may answer drivers.ErrNotSupported to Stop,
// Start and Kill; the suite then skips those checks.
func Conformance(t *testing.T, newDriver func(t *testing.T) drivers.Driver) {
	t.Helper()

	t.Run("Name", func(t *testing.T) {
		d := newDriver(t)
		if strings.TrimSpace(d.Name()) == "" {
			t.Fatal("Name() is empty")
		}
	})

	t.Run("StateBeforeCreate", func(t *testing.T) {
		d := newDriver(t)
		st, err := d.State(ctxFor(t))
		if err != nil {
			t.Fatalf("State before Create: %v", err)
		}
		if st != drivers.NotFound {
			t.Fatalf("State before Create = %s, want %s", st, drivers.NotFound)
		}
	})

	t.Run("RemoveMissing", func(t *testing.T) {
		d := newDriver(t)
		if err := d.Remove(ctxFor(t)); err != nil {
			t.Fatalf("Remove of a machine never created: %v", err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		d := newDriver(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.Create(ctx); err == nil {
			t.Cleanup(func() { _ = d.Remove(context.Background()) })
			t.Fatal("Create with a cancelled context succeeded")
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		d := newDriver(t)
		t.Cleanup(func() {
			// Leave nothing behind, even when a step failed.
			ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
			defer cancel()
			_ = d.Remove(ctx)
		})

		step(t, "Create", d.Create)
		wantState(t, d, drivers.Running, "after Create")
		step(t, "Create again (idempotent)", d.Create)
		wantState(t, d, drivers.Running, "after a second Create")
		checkEndpoint(t, d)
		checkAddress(t, d)

		if supported(t, "Stop", d.Stop) {
			wantState(t, d, drivers.Stopped, "after Stop")
			step(t, "Stop on a stopped host", d.Stop)
			wantState(t, d, drivers.Stopped, "after a second Stop")

			step(t, "Start", d.Start)
			wantState(t, d, drivers.Running, "after Start")
			step(t, "Start on a running host", d.Start)
			wantState(t, d, drivers.Running, "after a second Start")
		}

		if supported(t, "Kill", d.Kill) {
			wantState(t, d, drivers.Stopped, "after Kill")
			step(t, "Kill on a stopped host", d.Kill)
			step(t, "Create on a stopped host", d.Create)
			wantState(t, d, drivers.Running, "after Create on a stopped host")
		}

		step(t, "Remove", d.Remove)
		wantState(t, d, drivers.NotFound, "after Remove")
		step(t, "Remove again", d.Remove)
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	t.Cleanup(cancel)
	return ctx
}

func step(t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	if err := f(ctxFor(t)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// supported runs f and reports false when the driver says the operation is
// not supported for its kind of host.
func supported(t *testing.T, what string, f func(context.Context) error) bool {
	t.Helper()
	err := f(ctxFor(t))
	if errors.Is(err, drivers.ErrNotSupported) {
		t.Logf("%s: not supported by this driver, skipping its checks", what)
		return false
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return true
}

func wantState(t *testing.T, d drivers.Driver, want drivers.State, when string) {
	t.Helper()
	got, err := d.State(ctxFor(t))
	if err != nil {
		t.Fatalf("State %s: %v", when, err)
	}
	if got != want {
		t.Fatalf("State %s = %s, want %s", when, got, want)
	}
}

func checkEndpoint(t *testing.T, d drivers.Driver) {
	t.Helper()
	ep, err := d.SSH(ctxFor(t))
	if err != nil {
		t.Fatalf("SSH after Create: %v", err)
	}
	for _, p := range endpointProblems(ep) {
		t.Error("SSH endpoint: " + p)
	}
}

// endpointProblems are what is wrong with an SSH endpoint a driver gives.
func endpointProblems(ep drivers.Endpoint) []string {
	var out []string
	if ep.Host == "" {
		out = append(out, "empty Host")
	}
	if validate.Port(ep.Port) != nil {
		out = append(out, fmt.Sprintf("Port %d is not a TCP port", ep.Port))
	}
	if ep.User == "" {
		out = append(out, "empty User")
	}
	if ep.KeyPath != "" && !filepath.IsAbs(ep.KeyPath) {
		out = append(out, fmt.Sprintf("KeyPath %q is not absolute", ep.KeyPath))
	}
	if ep.HostKeyFingerprint != "" && !strings.HasPrefix(ep.HostKeyFingerprint, "SHA256:") {
		out = append(out, fmt.Sprintf("HostKeyFingerprint %q is not SHA256:...", ep.HostKeyFingerprint))
	}
	if _, _, err := net.SplitHostPort(ep.Address()); err != nil {
		out = append(out, fmt.Sprintf("Address() %q: %v", ep.Address(), err))
	}
	return out
}

func checkAddress(t *testing.T, d drivers.Driver) {
	t.Helper()
	addr, err := drivers.Address(ctxFor(t), d)
	if err != nil {
		t.Fatalf("Address after Create: %v", err)
	}
	if addr == "" || strings.ContainsAny(addr, " /") {
		t.Fatalf("Address after Create = %q: want an IP or a host name", addr)
	}
}
