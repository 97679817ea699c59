package drivertest

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/drivers"
)

func TestFakeConformance(t *testing.T) {
	w := NewWorld()
	var n atomic.Int64
	Conformance(t, func(t *testing.T) drivers.Driver {
		dir := t.TempDir()
		name := "fake-" + strconv.FormatInt(n.Add(1), 10)
		return w.Driver(drivers.Identity{Name: name, Dir: dir, PrivateKeyPath: filepath.Join(dir, "id_ed25519")}, FakeConfig{})
	})
}

func TestFakeSharedWorld(t *testing.T) {
	ctx := context.Background()
	w := NewWorld()
	m := drivers.Identity{Name: "n1"}
	if err := w.Driver(m, FakeConfig{}).Create(ctx); err != nil {
		t.Fatal(err)
	}
	// A second driver for the same machine (as the next CLI run makes)
	// sees the host the first made.
	st, err := w.Driver(m, FakeConfig{}).State(ctx)
	if err != nil || st != drivers.Running {
		t.Fatalf("State from a second driver = %s, %v; want Running", st, err)
	}
	w.SetState("n1", drivers.Stopped)
	if st, _ := w.Driver(m, FakeConfig{}).State(ctx); st != drivers.Stopped {
		t.Fatalf("State after SetState(Stopped) = %s", st)
	}
	if got := w.Hosts(); len(got) != 1 || got[0] != "n1" {
		t.Fatalf("Hosts() = %v", got)
	}
}

func TestFakeFailNextAndCalls(t *testing.T) {
	ctx := context.Background()
	w := NewWorld()
	d := w.Driver(drivers.Identity{Name: "n1"}, FakeConfig{})
	boom := errors.New("boom")
	w.FailNext("n1", "Create", boom)
	if err := d.Create(ctx); !errors.Is(err, boom) {
		t.Fatalf("first Create = %v, want boom", err)
	}
	if err := d.Create(ctx); err != nil {
		t.Fatalf("second Create = %v", err)
	}
	var got []string
	for _, c := range w.Calls() {
		got = append(got, c.String())
	}
	want := []string{"n1.Create", "n1.Create"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Calls() = %v, want %v", got, want)
	}
	if err := w.Driver(drivers.Identity{Name: "other"}, FakeConfig{}).Start(ctx); !errors.Is(err, ErrNoHost) {
		t.Fatalf("Start of a host never made = %v, want ErrNoHost", err)
	}
}

func TestFakeSpec(t *testing.T) {
	w := NewWorld()
	spec := w.Spec()
	reg := drivers.NewRegistry(spec)
	got, err := reg.Get(FakeName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := got.NewConfig()
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	got.BindFlags(fs, cfg)
	if err := fs.Parse([]string{"--fake-host", "10.0.0.5", "--fake-port", "2222", "--fake-address", "192.168.56.10"}); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	d, err := got.New(drivers.Identity{Name: "n1", PrivateKeyPath: "/k"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ep, err := d.SSH(ctx)
	if err != nil || ep.Address() != "10.0.0.5:2222" || ep.KeyPath != "/k" {
		t.Fatalf("SSH() = %+v, %v", ep, err)
	}
	if a, err := drivers.Address(ctx, d); err != nil || a != "192.168.56.10" {
		t.Fatalf("Address() = %q, %v", a, err)
	}
	bad := got.NewConfig().(*FakeConfig)
	bad.Port = 0
	if err := got.Validate(bad); err == nil {
		t.Fatal("Validate accepted port 0")
	}
}

func TestFakeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := NewFake(drivers.Identity{Name: "n1"})
	if _, err := d.State(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("State with a cancelled context = %v", err)
	}
}
