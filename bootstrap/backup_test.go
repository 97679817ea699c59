package bootstrap

import (
	"reflect"
	"strings"
	"testing"
)

func TestPickBackupSource(t *testing.T) {
	mgr := func(id string, leader, reachable bool) Member {
		return Member{ID: id, Hostname: "h-" + id, Role: RoleManager, Leader: leader, Reachable: reachable}
	}
	wk := Member{ID: "w", Hostname: "h-w", Role: RoleWorker}
	for _, tc := range []struct {
		name    string
		members []Member
		want    string
		pause   bool
		errHas  string
	}{
		{"one manager: the leader, paused", []Member{mgr("a", true, true), wk}, "a", true, ""},
		{"two managers: the leader, paused", []Member{mgr("a", false, true), mgr("b", true, true)}, "b", true, ""},
		{"three: a follower, first by hostname", []Member{mgr("c", false, true), mgr("a", true, true), mgr("b", false, true)}, "b", false, ""},
		{"three, one down: stopping another loses quorum", []Member{mgr("a", true, true), mgr("b", false, true), mgr("c", false, false)}, "", false, "would lose the Raft quorum"},
		{"five, one down: fine", []Member{mgr("a", true, true), mgr("b", false, false), mgr("c", false, true), mgr("d", false, true), mgr("e", false, true)}, "c", false, ""},
		{"no leader", []Member{mgr("a", false, false), wk}, "", false, "no leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PickBackupSource(tc.members)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want an error with %q, got %+v %v", tc.errHas, got, err)
				}
				return
			}
			if err != nil || got.ID != tc.want || got.Pause != tc.pause {
				t.Fatalf("got %+v %v, want %s pause=%v", got, err, tc.want, tc.pause)
			}
		})
	}
}

func TestGoneManagers(t *testing.T) {
	members := []Member{
		{ID: "self", Role: RoleManager, Reachable: true},
		{ID: "m2", Role: RoleManager},
		{ID: "m3", Role: RoleManager},
		{ID: "n2", Role: RoleManager, Reachable: true}, // joined the restored swarm
		{ID: "w1", Role: RoleWorker},
	}
	var ids []string
	for _, m := range GoneManagers(members, "self") {
		ids = append(ids, m.ID)
	}
	if !reflect.DeepEqual(ids, []string{"m2", "m3"}) {
		t.Errorf("gone managers %v", ids)
	}
}

func TestLabelsBack(t *testing.T) {
	man := Manifest{Nodes: []ManifestNode{
		{Hostname: "w1", Labels: map[string]string{"tier": "back", "zone": "a"}},
		{Hostname: "m-old", Labels: map[string]string{"x": "y"}},
	}}
	members := []Member{{ID: "new-w1", Hostname: "w1"}, {ID: "n1", Hostname: "n1"}}
	have := map[string]map[string]string{"new-w1": {"zone": "from-file"}}
	got := LabelsBack(man, members, have)
	want := map[string]map[string]string{"new-w1": {"tier": "back"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (a label the node has wins; hosts not there get none)", got, want)
	}
}

func TestNotRotated(t *testing.T) {
	nodes := []NodeTrust{{"w2", "OLD"}, {"m1", "NEW\n"}, {"w1", "OLD"}}
	if got := NotRotated(nodes, "NEW"); !reflect.DeepEqual(got, []string{"w1", "w2"}) {
		t.Errorf("got %v", got)
	}
	if got := NotRotated(nodes[1:2], "NEW"); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}
