package bootstrap

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func TestNodeChanges(t *testing.T) {
	base := swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive,
		Annotations: swarm.Annotations{Labels: map[string]string{"zone": "a", "admin": "kept"}}}
	for _, tc := range []struct {
		name    string
		want    NodeWant
		changed []string
		labels  map[string]string
		role    swarm.NodeRole
		avail   swarm.NodeAvailability
	}{
		{"nothing asked", NodeWant{}, nil, base.Labels, swarm.NodeRoleWorker, swarm.NodeAvailabilityActive},
		{"already right", NodeWant{Role: "worker", Availability: "active", Labels: map[string]string{"zone": "a"}}, nil, base.Labels, swarm.NodeRoleWorker, swarm.NodeAvailabilityActive},
		{"a label changes, the admin's stays", NodeWant{Labels: map[string]string{"zone": "b"}}, []string{"label zone=b"},
			map[string]string{"zone": "b", "admin": "kept"}, swarm.NodeRoleWorker, swarm.NodeAvailabilityActive},
		{"labels in key order", NodeWant{Labels: map[string]string{"z": "1", "b": "2", "zone": "a"}}, []string{"label b=2", "label z=1"},
			map[string]string{"zone": "a", "admin": "kept", "b": "2", "z": "1"}, swarm.NodeRoleWorker, swarm.NodeAvailabilityActive},
		{"role and availability", NodeWant{Role: "manager", Availability: "drain"}, []string{"role=manager", "availability=drain"},
			base.Labels, swarm.NodeRoleManager, swarm.NodeAvailabilityDrain},
		{"an empty label value is a value", NodeWant{Labels: map[string]string{"new": ""}}, []string{"label new="},
			map[string]string{"zone": "a", "admin": "kept", "new": ""}, swarm.NodeRoleWorker, swarm.NodeAvailabilityActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]string{"zone": "a", "admin": "kept"}
			spec, changed := NodeChanges(base, tc.want)
			if !reflect.DeepEqual(changed, tc.changed) {
				t.Errorf("changed = %q, want %q", changed, tc.changed)
			}
			if !reflect.DeepEqual(spec.Labels, tc.labels) || spec.Role != tc.role || spec.Availability != tc.avail {
				t.Errorf("spec = %+v", spec)
			}
			if !reflect.DeepEqual(base.Labels, before) {
				t.Errorf("the listed node's labels were written to: %v", base.Labels)
			}
		})
	}
	// A node with no labels at all.
	spec, changed := NodeChanges(swarm.NodeSpec{}, NodeWant{Labels: map[string]string{"k": "v"}})
	if len(changed) != 1 || spec.Labels["k"] != "v" {
		t.Errorf("no labels before: %v %v", changed, spec.Labels)
	}
}

func TestNotReady(t *testing.T) {
	ready := swarm.NodeStatus{State: swarm.NodeStateReady}
	listed := []swarm.Node{
		{ID: "w1", Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker}, Status: ready},
		{ID: "w2", Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker}, Status: swarm.NodeStatus{State: swarm.NodeStateUnknown}},
		{ID: "m1", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager}, Status: ready, ManagerStatus: &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable}},
		{ID: "m2", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager}, Status: ready, ManagerStatus: &swarm.ManagerStatus{Reachability: swarm.ReachabilityUnreachable}},
		{ID: "m3", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager}, Status: ready},
	}
	for _, tc := range []struct {
		ids  []string
		want []string
	}{
		{[]string{"w1", "m1"}, nil},
		{[]string{"w1", "w2"}, []string{"n2 w2 (unknown)"}},
		{[]string{"m2", "m3", "gone"}, []string{"gone (not in the swarm)", "m2 (a manager not reachable)", "m3 (a manager not reachable)"}},
		{nil, nil},
	} {
		got := NotReady(listed, tc.ids, map[string]string{"w2": "n2"})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("NotReady(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}

// EnsureNodes costs one list and an update only for the nodes that
// differ; a version moved on between the list and the update is
// inspected and tried again.
func TestEnsureNodesOneList(t *testing.T) {
	ctx := context.Background()
	l := newLab(t)
	out := l.up()
	mgr := l.nodes["m1"]
	id := func(name string) string { return out.NodeIDs[name] }
	want := map[string]NodeWant{
		id("m1"): {Labels: l.want["m1"].Labels},
		id("w1"): {Labels: map[string]string{"zone": "b"}},
		id("w2"): {Availability: "drain"},
	}
	l.w.ResetCalls()
	got, err := EnsureNodes(ctx, mgr, want, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || strings.Join(got[id("w1")], ",") != "label zone=b" || strings.Join(got[id("w2")], ",") != "availability=drain" {
		t.Errorf("changes = %v", got)
	}
	e := l.engine("m1")
	if e.Count("NodeList") != 1 || e.Count("NodeUpdate") != 2 || e.Count("NodeInspect") != 0 {
		t.Errorf("calls: %v", e.Calls())
	}
	l.w.ResetCalls()
	if again, err := EnsureNodes(ctx, mgr, want, 4); err != nil || len(again) != 0 || e.Count("NodeUpdate") != 0 {
		t.Errorf("a second pass changed %v (%v; %v)", again, err, e.Calls())
	}
	if err := WaitAllReady(ctx, mgr, []string{id("w1"), id("m2")}, nil, 5*time.Second); err != nil {
		t.Errorf("WaitAllReady: %v", err)
	}
	err = WaitAllReady(ctx, mgr, []string{"nosuchnode"}, map[string]string{"nosuchnode": "ghost"}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("a node not in the swarm: %v", err)
	}
}
