package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/wait"
)

// Pinned tells whether a service's placement ties it to one node (by
// hostname or node ID): its task cannot run elsewhere while that node is
// drained, so a roll does not wait for it (the registry is such a service).
func Pinned(spec swarm.ServiceSpec, hostname, id string) bool {
	if spec.TaskTemplate.Placement == nil {
		return false
	}
	return slices.ContainsFunc(spec.TaskTemplate.Placement.Constraints, func(c string) bool { return pinsTo(c, hostname, id) })
}

// pinsTo tells a placement constraint that names the node (by hostname,
// when known, or node ID).
func pinsTo(constraint, hostname, id string) bool {
	k, v, ok := strings.Cut(strings.ReplaceAll(constraint, " ", ""), "==")
	if !ok {
		return false
	}
	return (k == "node.hostname" && hostname != "" && strings.EqualFold(v, hostname)) || (k == "node.id" && v == id)
}

// rollDrained: no task runs on the node, and every task of the node's
// services (those that ran there) wanted running runs, except those of
// services pinned to the node. Other services' tasks, pending for reasons
// of their own, do not hold the roll up.
func rollDrained(tasks []swarm.Task, onNode []swarm.Task, id string, services map[string]bool, pinned func(serviceID string) bool) bool {
	for _, t := range tasks {
		if !services[t.ServiceID] {
			continue
		}
		if t.NodeID == id && t.Status.State == swarm.TaskStateRunning {
			return false
		}
		if t.Status.State != swarm.TaskStateRunning && !pinned(t.ServiceID) {
			return false
		}
	}
	return !anyRunning(onNode)
}

// waitRollDrained waits until the node's tasks of the services run
// elsewhere (rollDrained), those of services pinned to it excepted.
func waitRollDrained(ctx context.Context, mgr *Node, id, hostname string, services map[string]bool, timeout time.Duration) error {
	pinnedCache := map[string]bool{}
	pinned := func(ctx context.Context, sid string) bool {
		if p, ok := pinnedCache[sid]; ok {
			return p
		}
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, sid, client.ServiceInspectOptions{})
		if err != nil {
			return false
		}
		pinnedCache[sid] = Pinned(svc.Spec, hostname, id)
		return pinnedCache[sid]
	}
	err := waitTasksOff(ctx, mgr, id, timeout, func(ctx context.Context, onNode, wanted []swarm.Task) bool {
		return rollDrained(wanted, onNode, id, services, func(sid string) bool { return pinned(ctx, sid) })
	})
	if err != nil {
		return fmt.Errorf("draining node %s: its tasks did not move within %s (raise --drain-timeout if they need longer)", Short(id), timeout)
	}
	return nil
}

// WaitDrained waits until no task runs on the node and every task of the
// services that ran there is running elsewhere. Tasks of other services
// (pending for reasons of their own) do not hold it up.
func WaitDrained(ctx context.Context, mgr *Node, id string, timeout time.Duration) error {
	var services map[string]bool // those on the node when first listed
	err := waitTasksOff(ctx, mgr, id, timeout, func(_ context.Context, onNode, wanted []swarm.Task) bool {
		if services == nil {
			services = map[string]bool{}
			for _, t := range onNode {
				services[t.ServiceID] = true
			}
		}
		return !anyRunning(onNode) && drained(wanted, id, services)
	})
	if err != nil {
		return fmt.Errorf("draining node %s: its tasks did not move within %s", Short(id), timeout)
	}
	return nil
}

// waitTasksOff is the one drain wait: it reads the node's tasks and the
// swarm's tasks wanted running until off says the node's work runs
// elsewhere, bounded.
func waitTasksOff(ctx context.Context, mgr *Node, id string, timeout time.Duration, off func(ctx context.Context, onNode, wanted []swarm.Task) bool) error {
	return wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		onNode, err := mgr.API.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("node", id)})
		if err != nil {
			return false, nil
		}
		wanted, err := mgr.API.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
		if err != nil {
			return false, nil
		}
		return off(ctx, onNode, wanted), nil
	})
}

// allRunning: every task of the services (nil: all) wanted running runs.
func allRunning(tasks []swarm.Task, services map[string]bool) bool {
	for _, t := range tasks {
		if services != nil && !services[t.ServiceID] {
			continue
		}
		if t.Status.State != swarm.TaskStateRunning {
			return false
		}
	}
	return true
}

// drained: no task of the node's services that is wanted running is still
// on the node or not yet running.
func drained(tasks []swarm.Task, id string, services map[string]bool) bool {
	for _, t := range tasks {
		if !services[t.ServiceID] {
			continue
		}
		if t.NodeID == id || t.Status.State != swarm.TaskStateRunning {
			return false
		}
	}
	return true
}

func anyRunning(tasks []swarm.Task) bool {
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning {
			return true
		}
	}
	return false
}
