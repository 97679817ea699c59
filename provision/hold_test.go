package provision

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/ui"
)

// TestProvisionHold: with Spec.Hold, a change that restarts dockerd is
// asked about (with its why) and, held, left for the roll; what does not
// restart dockerd is not asked about.
func TestProvisionHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	h := newFakeHost(t, fix)
	if _, err := Provision(ctx, h, fix.spec(), nil); err != nil {
		t.Fatal(err)
	}
	have := h.docker

	// Nothing restarts dockerd: no question.
	asked := 0
	spec := fix.spec()
	spec.Hold = func(context.Context, []Why) (bool, error) { asked++; return true, nil }
	rep, err := Provision(ctx, h, spec, nil)
	if err != nil || asked != 0 || rep.Held != nil {
		t.Fatalf("a run with nothing to restart: asked %d, held %v, err %v", asked, rep.Held, err)
	}

	// New TLS files: asked, held, not written.
	spec.TLS = &TLS{CA: fakeCA, Cert: []byte("-----BEGIN CERTIFICATE-----\nissued again\n-----END CERTIFICATE-----\n"), Key: fakeKey, Port: 2376}
	var got []Why
	spec.Hold = func(_ context.Context, whys []Why) (bool, error) { got = whys; return true, nil }
	rep, err = Provision(ctx, h, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if JoinWhys(got) != "TLS certificates issued again" || JoinWhys(rep.Held) != JoinWhys(got) {
		t.Errorf("asked %v, held %v; want the TLS files", got, rep.Held)
	}
	if slices.Contains(rep.Changed, string(StepTLS)) || rep.DockerRestarted || h.docker != have {
		t.Errorf("a held run changed %v (restarted %v)", rep.Changed, rep.DockerRestarted)
	}

	// Not held: the same run writes them.
	spec.Hold = func(context.Context, []Why) (bool, error) { return false, nil }
	rep, err = Provision(ctx, h, spec, nil)
	if err != nil || rep.Held != nil || !slices.Contains(rep.Changed, string(StepTLS)) {
		t.Errorf("not held: changed %v, held %v, err %v", rep.Changed, rep.Held, err)
	}
}

// TestProvisionPersist: the persist step writes the restore first, in the
// steps' run, and a run after it has nothing to do.
func TestProvisionPersist(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	h := newFakeHost(t, fix)
	spec := fix.spec()
	spec.Persist = true
	var events []string
	progress := func(step string, st ui.Status, _ string) { events = append(events, step+" "+string(st)) }
	rep, err := Provision(ctx, h, spec, progress)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Changed, string(StepPersist)) {
		t.Errorf("changed %v: want persist", rep.Changed)
	}
	first := slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, "persist ") })
	hostname := slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, "hostname ") })
	if first < 0 || hostname < 0 || first > hostname {
		t.Errorf("events %v: want persist before hostname", events)
	}
	if h.files[persistScript] == "" || !h.reenabled[PersistUnitName] {
		t.Errorf("the restore was not written and enabled:\n%s", strings.Join(h.log, "\n"))
	}
	events = nil
	rep, err = Provision(ctx, h, spec, progress)
	if err != nil || len(rep.Changed) > 0 || events[len(events)-1] != "persist "+string(ui.Unchanged) {
		t.Errorf("the second run: changed %v, err %v, events %v", rep.Changed, err, events)
	}
}
