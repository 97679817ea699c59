package cluster

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/provision"
)

func loadJournal(st *store.Store, cluster string) (*bootstrap.FileJournal, error) {
	return bootstrap.LoadJournal(st.Cluster(cluster).RollPath())
}

// rollNodes are the held hosts as the roll's decisions see them.
func rollNodes(hosts []*host, leader string) []bootstrap.RollNode {
	var out []bootstrap.RollNode
	for _, h := range hosts {
		out = append(out, bootstrap.RollNode{Name: h.spec.Name, Role: h.spec.Role, Leader: h.spec.Name == leader, Change: h.held, Why: h.heldWhy})
	}
	return out
}

// roll installs the held engines one batch at a time (managers alone,
// workers by max_unavailable), and first gives back the availability of
// nodes that a stopped roll left drained.
func (c *Converger) roll(ctx context.Context, spec *Spec, hosts []*host, leader *host, resume string) (bool, error) {
	j, err := loadJournal(c.Machines.Store, spec.Name)
	if err != nil {
		return false, err
	}
	byName := map[string]*host{}
	for _, h := range hosts {
		byName[h.spec.Name] = h
	}
	ids, back := drainedBack(j, byName)
	batches := bootstrap.RollPlan(rollNodes(hosts, raftLeader(ctx, leader, hosts)), spec.MaxUnavailable)
	if len(back)+len(batches) == 0 {
		return false, nil
	}
	unlock, err := c.Machines.LockSwarm(ctx, leader.node)
	if err != nil {
		return false, err
	}
	defer unlock()
	r := c.reconciler()
	changed := false
	if len(back) > 0 {
		if err := r.Restore(ctx, leader.node, ids, back, j); err != nil {
			return false, err
		}
		changed = true
	}
	if len(batches) == 0 {
		return changed, nil
	}
	c.Machines.Progress.Event(spec.Name, "roll", ui.Info, "order: "+bootstrap.RollOrder(batches))
	targets := c.rollTargets(batches, byName, j, c.unlockKey(spec))
	if err := r.Roll(ctx, rollManagers(hosts, leader), targets, j, c.drainTimeout(), resume); err != nil {
		return true, err
	}
	return true, nil
}

// rollManagers are the managers' nodes, the leader first: it answers for
// the others while they restart.
func rollManagers(hosts []*host, leader *host) []*bootstrap.Node {
	managers := []*bootstrap.Node{leader.node}
	for _, h := range hosts {
		if h.spec.Role == bootstrap.RoleManager && h.node != nil {
			managers = append(managers, h.node)
		}
	}
	return managers
}

// drainedBack are the nodes left drained that need no change any more,
// to be made what they were now (by node ID: the availability each had);
// the others get it back at the end of their turn.
func drainedBack(j *bootstrap.FileJournal, byName map[string]*host) (ids, back map[string]string) {
	ids, back = map[string]string{}, map[string]string{}
	for name, was := range j.Was {
		if h, ok := byName[name]; ok && !h.held {
			ids[name], back[name] = h.state.NodeID, was
		}
	}
	return ids, back
}

// unlockKey is the swarm's autolock key, "" without one: a manager
// restarted by the roll comes back locked under autolock, and the roll
// unlocks what it restarted.
func (c *Converger) unlockKey(spec *Spec) string {
	b, err := os.ReadFile(c.Machines.Store.Cluster(spec.Name).UnlockKeyPath())
	if err != nil {
		return ""
	}
	key := strings.TrimSpace(string(b))
	c.Machines.Redactor.Add(key)
	return key
}

// rollTargets are the batches' hosts as the roll acts on them: each one's
// change provisions its machine.
func (c *Converger) rollTargets(batches [][]bootstrap.RollNode, byName map[string]*host, j *bootstrap.FileJournal, key string) [][]*bootstrap.RollTarget {
	var targets [][]*bootstrap.RollTarget
	for _, b := range batches {
		var tb []*bootstrap.RollTarget
		for _, n := range b {
			h := byName[n.Name]
			tb = append(tb, &bootstrap.RollTarget{
				Node: h.node, NodeID: h.state.NodeID, Was: j.Was[n.Name], UnlockKey: key,
				Change: c.rollChange(h),
			})
		}
		targets = append(targets, tb)
	}
	return targets
}

// rollChange provisions h's machine, the held change, in its turn.
func (c *Converger) rollChange(h *host) func(context.Context) error {
	return func(ctx context.Context) error {
		c.Machines.Progress.Event(h.spec.Name, "roll-change", ui.Info, h.heldWhy)
		rep, err := c.Machines.ProvisionWith(ctx, h.mach, h.client)
		if err != nil {
			return err
		}
		h.state.DockerVersion = rep.DockerVersion
		return nil
	}
}

func (c *Converger) drainTimeout() time.Duration {
	if c.DrainTimeout > 0 {
		return c.DrainTimeout
	}
	return DefaultDrainTimeout
}

// holdFor decides for a host of `cluster up` whether changes that restart
// dockerd (provision.NeedsRestart: a new engine; new TLS files, e.g. under
// a renewed CA) wait for the roll: when the host was not just made and
// runs a swarm node.
func (c *Converger) holdFor(h *host) machine.Hold {
	return func(ctx context.Context, whys []provision.Why) (bool, error) {
		if h.mach.JustCreated || len(whys) == 0 {
			return false, nil
		}
		n, err := h.mach.Node(h.client)
		if err != nil {
			return false, err
		}
		defer n.Close()
		s, err := n.State(ctx)
		if err != nil || !s.Active() {
			return false, nil // no swarm runs on it: provisioning changes it at once
		}
		c.Machines.Progress.Event(h.spec.Name, "roll", ui.Info, provision.JoinWhys(whys)+": in the roll, one node at a time")
		return true, nil
	}
}

// holdEngine is holdFor for `cluster upgrade`, which provisions nothing
// else: it only marks the host.
func (c *Converger) holdEngine(ctx context.Context, h *host) error {
	if h.mach.JustCreated {
		return nil
	}
	changes, err := c.Machines.PlanProvision(ctx, h.mach, h.client)
	if err != nil {
		return err
	}
	// Only the engine: TLS files are up's business.
	whys := provision.NeedsRestart(changes.Only(provision.StepInstall))
	held, err := c.holdFor(h)(ctx, whys)
	h.held, h.heldWhy = held, ""
	if held {
		h.heldWhy = provision.JoinWhys(whys)
	}
	return err
}

// raftLeader is the machine that leads the swarm's Raft group, as the
// anchor sees it (the anchor itself when it cannot tell).
func raftLeader(ctx context.Context, anchor *host, hosts []*host) string {
	members, err := bootstrap.Members(ctx, anchor.node)
	if err != nil {
		return anchor.spec.Name
	}
	for _, m := range members {
		if !m.Leader {
			continue
		}
		for _, h := range hosts {
			if h.state.NodeID == m.ID {
				return h.spec.Name
			}
		}
	}
	return anchor.spec.Name
}
