package bootstrap

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestRollPlan(t *testing.T) {
	m := func(name string, leader, change bool) RollNode {
		return RollNode{Name: name, Role: RoleManager, Leader: leader, Change: change}
	}
	w := func(name string, change bool) RollNode { return RollNode{Name: name, Role: RoleWorker, Change: change} }
	for _, tc := range []struct {
		name  string
		nodes []RollNode
		max   int
		want  string
	}{
		{"one manager two workers", []RollNode{w("w2", true), m("m1", true, true), w("w1", true)}, 0, "m1, then w1, then w2"},
		{"leader last of the managers", []RollNode{m("m1", true, true), m("m2", false, true), m("m3", false, true), w("w1", true)}, 1, "m2, then m3, then m1, then w1"},
		{"workers in batches", []RollNode{w("w1", true), w("w2", true), w("w3", true), w("w4", true), w("w5", true)}, 2, "w1 w2, then w3 w4, then w5"},
		{"managers never batched", []RollNode{m("m1", true, true), m("m2", false, true)}, 5, "m2, then m1"},
		{"nodes already right are not touched", []RollNode{m("m1", true, false), w("w1", false), w("w2", true)}, 1, "w2"},
		{"nothing to do", []RollNode{m("m1", true, false)}, 1, ""},
		{"negative max is one", []RollNode{w("a", true), w("b", true)}, -3, "a, then b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RollOrder(RollPlan(tc.nodes, tc.max)); got != tc.want {
				t.Errorf("order %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRestartCheck(t *testing.T) {
	mgr := func(id string, reachable bool) Member {
		return Member{ID: id, Hostname: id, Role: RoleManager, Reachable: reachable}
	}
	wk := Member{ID: "w", Hostname: "w", Role: RoleWorker}
	for _, tc := range []struct {
		name    string
		members []Member
		id      string
		warnHas string
		errHas  string
	}{
		{"a worker restarts freely", []Member{mgr("a", true), wk}, "w", "", ""},
		{"single manager pauses the swarm", []Member{mgr("a", true), wk}, "a", "takes no changes", ""},
		{"two managers: a warning", []Member{mgr("a", true), mgr("b", true)}, "a", "2 managers", ""},
		{"three managers keep quorum", []Member{mgr("a", true), mgr("b", true), mgr("c", true)}, "a", "", ""},
		{"three managers, one down: refused", []Member{mgr("a", true), mgr("b", true), mgr("c", false)}, "a", "", "would lose the Raft quorum"},
		{"five managers, one down: fine", []Member{mgr("a", true), mgr("b", true), mgr("c", true), mgr("d", true), mgr("e", false)}, "a", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := RestartCheck(tc.members, tc.id)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want an error with %q, got %v", tc.errHas, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.warnHas == "") != (warn == "") || !strings.Contains(warn, tc.warnHas) {
				t.Errorf("warning %q, want one with %q", warn, tc.warnHas)
			}
		})
	}
}

func TestRollErrorSaysWhatToType(t *testing.T) {
	e := &RollError{Node: "w1", Step: StepChange, Err: errString("apt-get install: exit 100\nE: Version '9' not found"), Resume: "cluster upgrade c.hcl"}
	for _, want := range []string{"w1", "step change", "E: Version '9' not found", "left drained", "cluster upgrade c.hcl"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q lacks %q", e.Error(), want)
		}
	}
}

func TestRollErrorBeforeTheDrain(t *testing.T) {
	e := &RollError{Node: "m2", Step: StepDrain, Err: errString("would lose the Raft quorum"), Resume: "cluster up c.hcl", Untouched: true}
	if !strings.Contains(e.Error(), "nothing was changed on it") || strings.Contains(e.Error(), "left drained") {
		t.Errorf("%q", e.Error())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPinned(t *testing.T) {
	spec := func(cs ...string) swarm.ServiceSpec {
		return swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{Placement: &swarm.Placement{Constraints: cs}}}
	}
	for _, tc := range []struct {
		spec swarm.ServiceSpec
		want bool
	}{
		{spec("node.hostname==m1"), true},
		{spec("node.hostname == M1"), true},
		{spec("node.id==abc"), true},
		{spec("node.hostname==m2"), false},
		{spec("node.hostname!=m1"), false},
		{spec("node.role==manager"), false},
		{swarm.ServiceSpec{}, false},
	} {
		if got := Pinned(tc.spec, "m1", "abc"); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.spec.TaskTemplate.Placement, got, tc.want)
		}
	}
}

func TestRollDrained(t *testing.T) {
	task := func(node, svc string, st swarm.TaskState) swarm.Task {
		return swarm.Task{NodeID: node, ServiceID: svc, Status: swarm.TaskStatus{State: st}}
	}
	pinned := func(s string) bool { return s == "registry" }
	for _, tc := range []struct {
		name   string
		tasks  []swarm.Task
		onNode []swarm.Task
		want   bool
	}{
		{"moved", []swarm.Task{task("w1", "web", swarm.TaskStateRunning), task("w2", "web", swarm.TaskStateRunning)}, nil, true},
		{"still on the node", []swarm.Task{task("n", "web", swarm.TaskStateRunning)}, nil, false},
		{"new task not running yet", []swarm.Task{task("w1", "web", swarm.TaskStatePreparing)}, nil, false},
		{"pinned service waits for the node", []swarm.Task{task("", "registry", swarm.TaskStatePending), task("w1", "web", swarm.TaskStateRunning)}, nil, true},
		{"old task still stopping", []swarm.Task{task("w1", "web", swarm.TaskStateRunning)}, []swarm.Task{task("n", "web", swarm.TaskStateRunning)}, false},
		{"another service's pending task does not count", []swarm.Task{task("", "other", swarm.TaskStatePending), task("w1", "web", swarm.TaskStateRunning)}, nil, true},
	} {
		services := map[string]bool{"web": true, "registry": true}
		if got := rollDrained(tc.tasks, tc.onNode, "n", services, pinned); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
