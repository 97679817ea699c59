package provision

import (
	"context"
	"strings"
	"testing"
	"time"
)

// refusingHost is a fixture whose dockerd does not know the key bip6, with
// a spec that asks for it (as --engine-opt would for a newer engine).
func refusingHost(t *testing.T, fixture string, batched bool) (Runner, *fakeHost, Spec) {
	fix := loadFixture(t, "testdata/hosts/"+fixture+".txt")
	fix.sections["host"] += "dockerd-refuses: bip6\n"
	h := newFakeHost(t, fix)
	spec := fix.spec()
	spec.Daemon.Defaults = map[string]any{"bip6": "fd00:1::1/64", "log-level": "warn"}
	if batched {
		return &batchingHost{fakeHost: h}, h, spec
	}
	return h, h, spec
}

// TestDaemonJSONRefusedByValidate is issue 27 item 7: a dockerd that has
// --validate (23 on) refuses the merged file before anything restarts: the
// host's daemon.json is as it was and dockerd runs on, not restarted.
func TestDaemonJSONRefusedByValidate(t *testing.T) {
	for _, batched := range []bool{false, true} {
		r, h, spec := refusingHost(t, "rocky9", batched)
		before, pid := h.files[daemonJSONPath], h.pid
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Provision(ctx, r, spec, h.progress)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "dockerd --validate") || !strings.Contains(err.Error(), "bip6") {
			t.Fatalf("batched %v: err %v, want dockerd's refusal naming bip6", batched, err)
		}
		if h.files[daemonJSONPath] != before {
			t.Errorf("batched %v: daemon.json changed:\n%s", batched, h.files[daemonJSONPath])
		}
		if _, left := h.files[daemonJSONNew]; left {
			t.Errorf("batched %v: the refused file is left on the host", batched)
		}
		if !h.active || h.pid != pid {
			t.Errorf("batched %v: dockerd active %v, pid %d -> %d: want it running, not restarted", batched, h.active, pid, h.pid)
		}
		if log := strings.Join(h.log, "\n"); strings.Contains(log, "restart docker") {
			t.Errorf("batched %v: dockerd was restarted:\n%s", batched, log)
		}
	}
}

// TestDaemonJSONRestoredWhenDockerdFails: Debian's docker.io 20.10 has no
// --validate; it takes the file, does not start with it, and gets the
// host's old one back (here: none) and starts again. The error says so,
// with the unit's own words.
func TestDaemonJSONRestoredWhenDockerdFails(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		batched bool
	}{{"debian12", false}, {"debian12", true}} {
		r, h, spec := refusingHost(t, tc.fixture, tc.batched)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Provision(ctx, r, spec, h.progress)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "put back") || !strings.Contains(err.Error(), "bip6") {
			t.Fatalf("%s batched %v: err %v, want the restore said, and dockerd's words on bip6", tc.fixture, tc.batched, err)
		}
		if dj, exists := h.files[daemonJSONPath]; exists {
			t.Errorf("%s batched %v: the host had no daemon.json, now it has:\n%s", tc.fixture, tc.batched, dj)
		}
		if !h.active {
			t.Errorf("%s batched %v: dockerd is down", tc.fixture, tc.batched)
		}
	}
}

// TestDaemonJSONRestoredToTheHostsFile: a host's own file (kept as
// .shoal-prev while the new one is tried) is what comes back.
func TestDaemonJSONRestoredToTheHostsFile(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	fix.sections["host"] += "dockerd-refuses: bip6\n"
	fix.sections["daemon.json"] = "{\n  \"log-driver\": \"journald\"\n}\n"
	h := newFakeHost(t, fix)
	spec := fix.spec()
	spec.Daemon.Defaults = map[string]any{"bip6": "fd00:1::1/64"}
	_, err := Provision(context.Background(), h, spec, h.progress)
	if err == nil || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("err %v, want the restore said", err)
	}
	if got := h.files[daemonJSONPath]; got != fix.sections["daemon.json"] || !h.active {
		t.Errorf("daemon.json %q (active %v), want the host's own back and dockerd running", got, h.active)
	}
}
