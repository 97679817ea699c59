package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestJoinGoesOn(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.`), true},
		{errors.New("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"), false},
		{errors.New("This node is already part of a swarm."), false},
	} {
		if got := JoinGoesOn(tc.err); got != tc.want {
			t.Errorf("JoinGoesOn(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestJoinProgress(t *testing.T) {
	for _, tc := range []struct {
		s    State
		done bool
		err  string
	}{
		{State{LocalNodeState: StateActive, NodeID: "n1"}, true, ""},
		{State{LocalNodeState: StatePending}, false, ""},
		{State{LocalNodeState: StateError, Error: "rpc error: code = Unavailable desc = connection refused"}, false, "ended in state error: rpc error: code = Unavailable"},
		{State{LocalNodeState: StateInactive}, false, "ended in state inactive: no error given"},
		{State{LocalNodeState: StateLocked}, false, "ended in state locked"},
	} {
		done, err := JoinProgress(tc.s)
		if done != tc.done || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("JoinProgress(%+v) = %v, %v; want %v, %q", tc.s, done, err, tc.done, tc.err)
		}
	}
}

// TestSlowJoin: a worker's join outlives dockerd's own limit (dockerd
// answers "Timeout was reached before node joined ... continue in the
// background"). The run waits for it rather than fail, never joins a
// second time, and when the join ends in the node's own error, says it.
func TestSlowJoin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		host  string
		infos int
		fail  string
		wait  time.Duration
		err   string
	}{
		{"joins after the limit", "w1", 3, "", 0, ""},
		{"a manager's join too", "m2", 3, "", 0, ""},
		{"ends in the node's error", "w1", 2, "rpc error: code = Unavailable desc = connection error: dial tcp 10.0.0.1:2377: i/o timeout", 0,
			"w1: swarm join 10.0.0.1: the join, gone on in the background after dockerd's time limit, ended in state error: rpc error: code = Unavailable"},
		{"bounded", "w1", 1 << 30, "", 300 * time.Millisecond, "w1: swarm join 10.0.0.1: the join goes on in the background after dockerd's time limit, and the node is not in the swarm 300ms later (state pending)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			l.engine(tc.host).SlowJoin(tc.infos, tc.fail)
			l.nodes[tc.host].JoinWait = tc.wait
			_, err := l.r.Reconcile(context.Background(), l.request(Policy{}))
			if n := l.engine(tc.host).Count("SwarmJoin"); n != 1 {
				t.Errorf("%s got %d joins, want 1", tc.host, n)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				l.healthy("m1")
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("reconcile: %v\nwant %q", err, tc.err)
			}
		})
	}
}
