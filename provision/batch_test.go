package provision

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// batchingHost is the fake host with RunBatch, as sshrun.Client has it:
// each op runs through the fake in order; failAt makes the first op of
// that step fail.
type batchingHost struct {
	*fakeHost
	batches [][]sshrun.Op
	failAt  string
}

func (b *batchingHost) RunBatch(ctx context.Context, ops []sshrun.Op) error {
	b.batches = append(b.batches, ops)
	for i, op := range ops {
		var err error
		switch {
		case op.Label == b.failAt:
			err = errors.New("exit status 1: it broke")
		case op.File != nil:
			err = b.fakeHost.WriteFile(ctx, op.File.Path, op.File.Data, op.File.Mode, op.File.Owner)
		default:
			_, err = b.fakeHost.RunSudo(ctx, op.Cmd)
		}
		if err != nil {
			return &sshrun.BatchError{Host: b.Host(), Index: i, Label: op.Label, Err: err}
		}
	}
	return nil
}

// rootCalls counts the root commands and file writes the host was sent
// outside batches (the facts probe included).
func rootCalls(h *fakeHost) int {
	n := 0
	for _, l := range h.log {
		if strings.HasPrefix(l, "sudo") || strings.HasPrefix(l, "write:") {
			n++
		}
	}
	return n
}

// TestBatchedApply: with a runner that batches, every fixture ends as it
// does step by step (the same files, hostname, users, daemon, and steps
// reported changed), in fewer round trips; a host that has Docker gets
// every change up to the restart in one batch.
func TestBatchedApply(t *testing.T) {
	for _, path := range fixtures(t) {
		fix := loadFixture(t, path)
		if strings.TrimSpace(fix.sections["error"]) != "" {
			continue
		}
		t.Run(fix.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			plain := newFakeHost(t, fix)
			want, err := Provision(ctx, plain, fix.spec(), plain.progress)
			if err != nil {
				t.Fatalf("step by step: %v", err)
			}
			b := &batchingHost{fakeHost: newFakeHost(t, fix)}
			got, err := Provision(ctx, b, fix.spec(), b.progress)
			if err != nil {
				t.Fatalf("batched: %v", err)
			}
			checkConverged(t, b.fakeHost, fix.spec())
			if !reflect.DeepEqual(got.Changed, want.Changed) || got.DockerRestarted != want.DockerRestarted {
				t.Errorf("batched changed %v (restarted %v), step by step %v (%v)", got.Changed, got.DockerRestarted, want.Changed, want.DockerRestarted)
			}
			if b.hostname != plain.hostname || !reflect.DeepEqual(b.files, plain.files) || !reflect.DeepEqual(b.groups, plain.groups) ||
				b.enabled != plain.enabled || b.active != plain.active || b.pid != plain.pid {
				t.Errorf("the batched host differs from the one provisioned step by step")
			}
			if len(b.batches) == 0 {
				t.Fatal("nothing was batched")
			}
			ops := 0
			for _, batch := range b.batches {
				ops += len(batch)
			}
			// Each op the fake ran is in its log; a batch is one round trip.
			if n, m := rootCalls(b.fakeHost)-ops+len(b.batches), rootCalls(plain); n >= m {
				t.Errorf("%d root round trips with batches, %d without", n, m)
			}
			// Once the host has Docker, a rename (the hostname, /etc/hosts
			// and a dockerd restart) is one batch.
			spec := fix.spec()
			spec.Hostname = "renamed"
			b.log, b.tty, b.batches = nil, false, nil
			rep, err := Provision(ctx, b, spec, b.progress)
			if err != nil {
				t.Fatalf("rename: %v", err)
			}
			if len(b.batches) != 1 || b.hostname != "renamed" || !contains(rep.Changed, "hostname") || !rep.DockerRestarted {
				t.Errorf("rename: %d batches, hostname %q, changed %v, restarted %v", len(b.batches), b.hostname, rep.Changed, rep.DockerRestarted)
			}
		})
	}
}

// A batch that fails at a step reports the steps before it done, that one
// failed, and runs nothing after it.
func TestBatchFailureNamesStep(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/ubuntu22.04.txt")
	b := &batchingHost{fakeHost: newFakeHost(t, fix), failAt: "docker-tls"}
	spec := fix.spec()
	var events []string
	rep, err := Provision(context.Background(), b, spec, func(step string, st ui.Status, _ string) {
		events = append(events, step+" "+string(st))
	})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "docker-tls" || !strings.Contains(err.Error(), "it broke") {
		t.Fatalf("want docker-tls's error, got %v", err)
	}
	if rep == nil || strings.Join(rep.Changed, ",") == "" || contains(rep.Changed, "docker-tls") || contains(rep.Changed, "docker-service") {
		t.Errorf("changed %v: want the steps before docker-tls only", rep)
	}
	if !contains(events, "docker-tls failed") {
		t.Errorf("events %v lack docker-tls failed", events)
	}
	if log := strings.Join(b.log, "\n"); strings.Contains(log, "restart docker") {
		t.Errorf("dockerd was restarted after a failed step:\n%s", log)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The daemon a run leaves is the next run's Spec.KnownDaemon: while that
// daemon runs, the probe's version is the last run's (the fake, like the
// shell, answers with it); a restart makes the report's daemon zero, and
// a known daemon that is not the running one is not taken.
func TestKnownDaemon(t *testing.T) {
	ctx := context.Background()
	fix := loadFixture(t, "testdata/hosts/ubuntu22.04.txt")
	h := newFakeHost(t, fix)
	spec := fix.spec()
	first, err := Provision(ctx, h, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Daemon != (RunningDaemon{}) {
		t.Errorf("a run that started dockerd reports the daemon %+v; want none (the next probe asks)", first.Daemon)
	}
	again, err := Provision(ctx, h, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := again.Daemon
	if !d.valid() || d.Version != again.DockerVersion || d.id() != h.daemonID() {
		t.Fatalf("a run that changed nothing reports the daemon %+v (version %s); want the fake's %s", d, again.DockerVersion, h.daemonID())
	}

	spec.KnownDaemon = d
	spec.KnownDaemon.Version = "99.1.2" // what the last run was told
	rep, err := Provision(ctx, h, spec, nil)
	if err != nil || rep.DockerVersion != "99.1.2" || rep.Daemon.Version != "99.1.2" {
		t.Errorf("the same daemon: version %q, daemon %+v, %v; want the known 99.1.2", rep.DockerVersion, rep.Daemon, err)
	}
	spec.KnownDaemon.PID++
	rep, err = Provision(ctx, h, spec, nil)
	if err != nil || rep.DockerVersion != d.Version {
		t.Errorf("another daemon: version %q, %v; want the running %q", rep.DockerVersion, err, d.Version)
	}
}
