package bootstrap

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"sort"
	"strings"
)

// A roll applies a change that restarts dockerd (a new engine version, a
// new TLS certificate under a new CA) to the nodes of a running swarm one
// batch at a time: drain, wait until the tasks run elsewhere, change,
// wait until the node is Ready, make it what it was, wait for the tasks.

// RollNode is one node that the roll may change.
type RollNode struct {
	Name string
	Role validate.Role
	// Leader: the node leads the Raft group (rolled last of the managers,
	// so that the leadership moves once).
	Leader bool
	// Change: the node needs the change (a node already right is not
	// touched).
	Change bool
	// Why says what changes (e.g. "engine 20.10.24 -> 20.10.99").
	Why string
}

// RollPlan orders the roll: managers first, one at a time, the leader last
// of them; then workers in batches of maxUnavailable (at least 1), in name
// order. Nodes without a change are left out.
func RollPlan(nodes []RollNode, maxUnavailable int) [][]RollNode {
	maxUnavailable = max(maxUnavailable, 1)
	var managers, workers []RollNode
	for _, n := range nodes {
		if !n.Change {
			continue
		}
		if n.Role == RoleManager {
			managers = append(managers, n)
		} else {
			workers = append(workers, n)
		}
	}
	sort.SliceStable(managers, func(i, j int) bool {
		if managers[i].Leader != managers[j].Leader {
			return !managers[i].Leader
		}
		return managers[i].Name < managers[j].Name
	})
	sort.SliceStable(workers, func(i, j int) bool { return workers[i].Name < workers[j].Name })
	var out [][]RollNode
	for _, m := range managers {
		out = append(out, []RollNode{m})
	}
	for i := 0; i < len(workers); i += maxUnavailable {
		end := min(i+maxUnavailable, len(workers))
		out = append(out, append([]RollNode(nil), workers[i:end]...))
	}
	return out
}

// RollOrder is the plan in words: "m1, then w1 w2, then w3".
func RollOrder(batches [][]RollNode) string {
	var parts []string
	for _, b := range batches {
		var names []string
		for _, n := range b {
			names = append(names, n.Name)
		}
		parts = append(parts, strings.Join(names, " "))
	}
	return strings.Join(parts, ", then ")
}

// RestartCheck tells whether the swarm keeps its Raft quorum while the
// manager with ID id restarts (its dockerd down for a while). With a
// single manager the swarm takes no changes while it restarts (a warning);
// with two, neither may restart without stopping Raft for that time (a
// warning too: it comes back); a restart that would lose the quorum
// because other managers are already unreachable is refused.
func RestartCheck(members []Member, id string) (warning string, err error) {
	c := countManagers(members, map[string]bool{id: true})
	managers, reachable := c.managers, c.reachable
	if len(c.names) == 0 {
		return "", nil // not a manager
	}
	switch {
	case managers == 1:
		return "the swarm has one manager: it takes no changes (no new tasks, no rescheduling) while that manager's dockerd restarts", nil
	case reachable < managers:
		if need := managers/2 + 1; reachable-1 < need {
			return "", fmt.Errorf("restarting a manager now would lose the Raft quorum: %d of %d managers reachable, and %d are needed while it restarts. Bring the unreachable managers back first", reachable, managers, need)
		}
	case managers == 2:
		return "2 managers: the swarm takes no changes while either restarts; 3 managers tolerate one restart", nil
	}
	return "", nil
}

// RollStep is one step of a node's roll, for the message of a failure.
type RollStep string

const (
	StepDrain    RollStep = "drain"
	StepChange   RollStep = "change"
	StepReady    RollStep = "wait-ready"
	StepActivate RollStep = "activate"
	StepTasks    RollStep = "wait-tasks"
)

// RollError says which node failed at which step; the node stays drained
// (RollStep before StepActivate) and the resume hint says what to type.
type RollError struct {
	Node   string
	Step   RollStep
	Err    error
	Resume string
	// Untouched: the roll stopped before it drained the node.
	Untouched bool
}

func (e *RollError) Error() string {
	state := "it is left drained"
	switch {
	case e.Untouched:
		state = "nothing was changed on it"
	case e.Step == StepTasks:
		state = "it is active again"
	}
	return fmt.Sprintf("%s: roll stopped at step %s: %v\n%s; the nodes after it are not touched. Fix the cause, then run '%s' to resume", e.Node, e.Step, e.Err, state, e.Resume)
}

func (e *RollError) Unwrap() error { return e.Err }

// RollTarget is a node of a batch and the change to make on it.
type RollTarget struct {
	Node *Node
	// NodeID is its swarm node ID.
	NodeID string
	// Change installs or configures, and restarts dockerd; it returns when
	// dockerd answers again.
	Change func(ctx context.Context) error
	// Was is the availability to give back, when a stopped roll left the
	// node drained ("" reads it before draining).
	Was string
	// UnlockKey unlocks a manager that comes back locked (autolock) from
	// the restart the roll made ("" when there is none).
	UnlockKey string
}

// RollJournal remembers the availability a node had before the roll
// drained it, so that a roll stopped half-way is resumed and the node made
// what it was (it survives the process: a file in the store).
type RollJournal interface {
	Drained(name, was string) error
	Restored(name string) error
}
