package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// hookJournal is a roll journal in memory that runs a hook when a node is
// drained: the world changes between the batch's start and its restart.
type hookJournal struct {
	was     map[string]string
	drained func(name string)
}

func (j *hookJournal) Drained(name, was string) error {
	j.was[name] = was
	if j.drained != nil {
		j.drained(name)
	}
	return nil
}

func (j *hookJournal) Restored(name string) error { delete(j.was, name); return nil }

// TestRollQuorumCheckedBeforeRestart: a manager that goes down while the
// batch drains makes the restart of the next manager refused (it would
// lose the quorum), though the check at the batch's start passed.
func TestRollQuorumCheckedBeforeRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		killM3  bool
		changed bool
		err     string
	}{
		{"quorum kept: m2 restarts", false, true, ""},
		{"m3 down during the drain: m2's restart refused", true, false, "would lose the Raft quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t)
			ids := l.up().NodeIDs
			j := &hookJournal{was: map[string]string{}, drained: func(string) {
				if tc.killM3 {
					l.w.Kill("m3")
				}
			}}
			changed := false
			target := &RollTarget{Node: l.nodes["m2"], NodeID: ids["m2"], Change: func(context.Context) error {
				changed = true
				l.w.Restart("m2")
				return nil
			}}
			managers := []*Node{l.nodes["m1"], l.nodes["m2"], l.nodes["m3"]}
			err := l.r.Roll(ctx, managers, [][]*RollTarget{{target}}, j, time.Second, "cluster up lab.hcl")
			if changed != tc.changed {
				t.Errorf("m2 changed: %v, want %v", changed, tc.changed)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("roll: %v", err)
				}
				return
			}
			var re *RollError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("roll: %v, want a RollError with %q", err, tc.err)
			}
			if re.Node != "m2" || re.Step != StepChange || j.was["m2"] == "" {
				t.Errorf("stopped at %s %s (journal %v): want m2 at %s, left drained and journalled", re.Node, re.Step, j.was, StepChange)
			}
		})
	}
}
