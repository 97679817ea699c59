package provision

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// BatchRunner is an optional capability of a Runner, checked with a type
// assertion: root commands and files run in order in one session
// (sshrun.Client.RunBatch).
type BatchRunner interface {
	RunBatch(ctx context.Context, ops []sshrun.Op) error
}

// batchable steps only write files and run root commands whose output they
// do not read, so their Apply can be recorded and run with the steps after
// it in one session: on a host that has Docker, everything up to and with
// the dockerd restart. (Their Checks read the facts, or run at once.)
func batchable(s Step) bool {
	switch s.(type) {
	case persistStep, hostnameStep, hostsStep, userStep, daemonJSONStep, engineEnvStep, tlsStep, firewallStep, iptablesStep, ipvsStep, vmxnet3Step, serviceStep, firewalldKeepStep:
		return true
	}
	return false
}

// recorder is the Runner a batched step's Apply runs with: its root
// commands and files are kept, in order, labelled with the step, for one
// RunBatch. Host, User and Run are the real runner's.
type recorder struct {
	Runner
	label string
	ops   []sshrun.Op
}

func (r *recorder) RunSudo(_ context.Context, cmd string) (sshrun.Result, error) {
	r.ops = append(r.ops, sshrun.Op{Label: r.label, Cmd: cmd})
	return sshrun.Result{ExitCode: 0}, nil
}

func (r *recorder) WriteFile(_ context.Context, path string, data []byte, mode fs.FileMode, owner string) error {
	r.ops = append(r.ops, sshrun.Op{Label: r.label, File: &sshrun.File{Path: path, Data: data, Mode: mode, Owner: owner}})
	return nil
}

func (r *recorder) WriteFiles(_ context.Context, files []sshrun.File) error {
	for i := range files {
		f := files[i]
		r.ops = append(r.ops, sshrun.Op{Label: r.label, File: &f})
	}
	return nil
}

// batch is Apply's pending work: the recorded steps, run at the next step
// that cannot be batched, or at the end.
type batch struct {
	runner BatchRunner
	rec    *recorder
	steps  []StepName
}

// record runs the step's Apply against the recorder.
func (b *batch) record(ctx context.Context, h *Host, s Step) error {
	if b.rec == nil {
		b.rec = &recorder{Runner: h.R}
	}
	b.rec.label = string(s.Name())
	before := len(b.rec.ops)
	real := h.R
	h.R = b.rec
	defer func() { h.R = real }()
	if err := s.Apply(ctx, h); err != nil {
		b.rec.ops = b.rec.ops[:before] // nothing of a step that failed runs
		return err
	}
	b.steps = append(b.steps, s.Name())
	return nil
}

// batchFailure is the step a failed batch stopped at (its op's label, else
// the last step) and that step's error.
func batchFailure(ctx context.Context, h *Host, steps []StepName, err error) (StepName, error) {
	failed := steps[len(steps)-1]
	var be *sshrun.BatchError
	if errors.As(err, &be) && be.Label != "" {
		failed = StepName(be.Label)
	}
	switch failed {
	case StepService:
		err = serviceFailed(ctx, h, err)
	case StepDaemonJSON:
		err = daemonJSONRefused(err)
	}
	return failed, err
}

// flush runs what was recorded in one session and reports each step: done
// up to the one that failed.
func (b *batch) flush(ctx context.Context, h *Host, rep *Report, progress Progress) error {
	rec, steps := b.rec, b.steps
	b.rec, b.steps = nil, nil
	if rec == nil || len(steps) == 0 {
		return nil
	}
	start := time.Now()
	err := b.runner.RunBatch(ctx, rec.ops)
	var failed StepName
	if err != nil {
		failed, err = batchFailure(ctx, h, steps, err)
	}
	took := time.Since(start).Round(time.Millisecond).String()
	for _, name := range steps {
		if err != nil && name == failed {
			progress(string(name), ui.Failed, "")
			return &StepError{Host: h.R.Host(), Step: name, Err: err}
		}
		rep.Changed = append(rep.Changed, string(name))
		progress(string(name), ui.Changed, took+", in one session with the steps beside it")
	}
	if err != nil { // an op of no step: cannot be, but never lost
		return &StepError{Host: h.R.Host(), Step: failed, Err: err}
	}
	return nil
}
