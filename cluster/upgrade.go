package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
)

// UpgradeResult says what `cluster upgrade` did.
type UpgradeResult struct {
	Cluster string   `json:"cluster"`
	Order   string   `json:"order"`
	Rolled  []string `json:"rolled"`
	Changed bool     `json:"changed"`
}

// Upgrade applies only the engine settings of the file (install, version,
// repo_url) to the cluster's machines, one node at a time as `cluster up`
// does: nothing else of the file is converged.
func (c *Converger) Upgrade(ctx context.Context, spec *Spec) (*UpgradeResult, error) {
	unlock, err := c.Machines.Store.TryLock("cluster", spec.Name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", spec.Name, err)
	}
	defer unlock()
	res := &UpgradeResult{Cluster: spec.Name, Rolled: []string{}}
	hosts := make([]*host, len(spec.Machines))
	for i, m := range spec.Machines {
		if !c.Machines.Store.Exists(m.Name) {
			return res, fmt.Errorf("%s: no such machine yet: run '%s' first", m.Name, c.commandLine(spec, "up"))
		}
		hosts[i] = &host{spec: m}
	}
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	if err := parallel(ctx, c.Parallel, hosts, c.upgradeHost); err != nil {
		return res, err
	}
	leader, err := c.upgradeLeader(spec, hosts, res)
	if err != nil {
		return res, err
	}
	res.Order = bootstrap.RollOrder(bootstrap.RollPlan(rollNodes(hosts, raftLeader(ctx, leader, hosts)), spec.MaxUnavailable))
	res.Changed, err = c.roll(ctx, spec, hosts, leader, c.commandLine(spec, "upgrade"))
	return res, err
}

// upgradeHost records the file's engine settings for h's machine,
// connects, holds the engine where it changes and reads the node's state.
func (c *Converger) upgradeHost(ctx context.Context, h *host) error {
	mach, err := c.Machines.Load(h.spec.Name)
	if err != nil {
		return err
	}
	mach.Engine.Install, mach.Engine.Version, mach.Engine.RepoURL = h.spec.Engine.Install, h.spec.Engine.Version, h.spec.Engine.RepoURL
	if err := c.Machines.Store.Save(mach.Machine); err != nil {
		return err
	}
	h.mach = mach
	if h.log, err = c.Machines.OpenIdleLog(mach, logIdle); err != nil {
		return err
	}
	if h.client, err = c.Machines.Connect(ctx, mach, h.log); err != nil {
		return err
	}
	if err := c.holdEngine(ctx, h); err != nil {
		return fmt.Errorf("%s: %w", h.spec.Name, err)
	}
	if h.node, err = mach.Node(h.client); err != nil {
		return err
	}
	h.state, err = h.node.State(ctx)
	return err
}

// upgradeLeader returns the first manager that answers, once every host
// is in the swarm; it lists in res the hosts whose engine changes.
func (c *Converger) upgradeLeader(spec *Spec, hosts []*host, res *UpgradeResult) (*host, error) {
	var leader *host
	for _, h := range hosts {
		if h.state.Active() && h.state.Manager && leader == nil {
			leader = h
		}
	}
	if leader == nil {
		return nil, fmt.Errorf("cluster %s: no manager of its swarm answers: run '%s' first", spec.Name, c.commandLine(spec, "up"))
	}
	for _, h := range hosts {
		if h.held {
			res.Rolled = append(res.Rolled, h.spec.Name)
		} else if !h.state.Active() {
			return nil, fmt.Errorf("%s is not in the swarm (state %s): run '%s'", h.spec.Name, h.state.LocalNodeState, c.commandLine(spec, "up"))
		}
	}
	return leader, nil
}

// Rotate rotates the swarm's join tokens and, with ca, its root CA,
// through a live manager of the file's cluster.
func (c *Converger) Rotate(ctx context.Context, spec *Spec, ca bool, timeout time.Duration) error {
	// Not while up joins nodes with the tokens it read.
	unlockCluster, err := c.Machines.Store.TryLock("cluster", spec.Name)
	if err != nil {
		return fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", spec.Name, err)
	}
	defer unlockCluster()
	h, _, err := c.liveManager(ctx, spec)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("cluster %s: no manager of its swarm answers", spec.Name)
	}
	defer h.close()
	unlock, err := c.Machines.LockSwarm(ctx, h.node)
	if err != nil {
		return err
	}
	defer unlock()
	return c.reconciler().Rotate(ctx, h.node, ca, timeout)
}
