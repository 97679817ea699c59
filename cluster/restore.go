package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
)

// Restore rebuilds the cluster's swarm from a backup on the machines of
// spec (the cluster's own, or new ones with other addresses): its first
// manager gets the backup's Raft state and starts a new cluster of one from
// it (--force-new-cluster), the entries of the managers that are gone are
// removed, the other machines leave what is left of the old swarm and join
// again, and then everything `cluster up` does (/etc/hosts, registry trust,
// roles, labels, the registry) follows. Node labels that were set on the
// swarm and not in the file come back from the manifest. Running it again
// finishes what an interrupted run began.
func (c *Converger) Restore(ctx context.Context, spec *Spec, b *Backup) (*Result, error) {
	if spec.Name != b.Manifest.Cluster {
		return nil, fmt.Errorf("the backup is of cluster %q, the file describes cluster %q: restore it with a file of that cluster", b.Manifest.Cluster, spec.Name)
	}
	start := time.Now()
	c.UseSecrets(spec)
	st := c.Machines.Store
	if b.Key != "" {
		c.Machines.Redactor.Add(b.Key)
	}
	// Nothing in the store changes before the lock is held and the first
	// manager is known to take the backup: a refused restore must leave
	// the live swarm's unlock key, state and machines as they are.
	unlock, err := lockCluster(st, spec.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := c.checkRestoreTarget(ctx, spec, b); err != nil {
		return nil, err
	}
	others, err := notInFile(st, spec)
	if err != nil {
		return nil, err
	}
	c.restore = b
	defer func() { c.restore = nil }()
	res, err := c.up(ctx, spec, start)
	if err != nil {
		return res, err
	}
	if len(others) > 0 {
		c.Machines.Progress.Event(spec.Name, "restore", ui.Info, "machines "+strings.Join(others, ", ")+" are not in the file and no longer of cluster "+spec.Name+": 'machine rm' them when their hosts are gone")
	}
	return res, nil
}

// restoreState is the state a restore starts from: it names the backup's
// swarm, so that up joins it and never starts another; the machines are
// the file's.
func restoreState(spec *Spec, b *Backup) *State {
	return &State{Name: spec.Name, File: spec.File, Machines: clusterfile.Names(spec.Machines), Leader: spec.Managers()[0].Name, ClusterID: b.Manifest.SwarmID}
}

// notInFile are the machines of the cluster that the file does not have,
// sorted.
func notInFile(st *store.Store, spec *Spec) ([]string, error) {
	inFile := map[string]bool{}
	for _, m := range spec.Machines {
		inFile[m.Name] = true
	}
	stored, err := machinesOf(st, spec.Name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range stored {
		if !inFile[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// restored writes the store once the backup's swarm state is in place on
// the first manager: the unlock key and key pair, the state naming the
// backup's swarm, and the machines the file does not have stop being the
// cluster's (nothing is done to them; 'machine rm' forgets them), so that
// no run tries to drain them out of a swarm they are not in.
func (c *Converger) restored(spec *Spec) error {
	st := c.Machines.Store
	if err := writeShoalFiles(st, spec.Name, c.restore); err != nil {
		return err
	}
	others, err := notInFile(st, spec)
	if err != nil {
		return err
	}
	for _, n := range others {
		m, err := st.Load(n)
		if err != nil {
			return err
		}
		m.Cluster = ""
		if err := st.Save(m); err != nil {
			return err
		}
	}
	return saveState(st, restoreState(spec, c.restore))
}

// restoreStep is what the first manager needs for a restore.
type restoreStep int

const (
	// restorePut: in no swarm; it gets the backup's state.
	restorePut restoreStep = iota
	// restoreHas: it runs the backup's swarm already (a restore run again).
	restoreHas
)

// restoreAction decides, from the first manager's swarm state, what a
// restore does with it; one in any other swarm is refused.
func restoreAction(name string, s bootstrap.State, swarmID string) (restoreStep, error) {
	switch {
	case s.Active() && s.Manager && s.ClusterID == swarmID:
		return restoreHas, nil
	case s.LocalNodeState == bootstrap.StateInactive || s.LocalNodeState == "":
		return restorePut, nil
	}
	return 0, fmt.Errorf("%s is in a swarm already (state %s, swarm %s): a restore starts from a first manager in no swarm; use a fresh host, or make it leave its swarm first", name, s.LocalNodeState, bootstrap.Short(s.ClusterID))
}

// checkRestoreTarget refuses, before anything changes, a restore whose
// first manager (a machine of the store already, at the host the file
// names) cannot be reached or is in another swarm. A first manager the run
// makes, or that the file moves to another host (the old one is gone: the
// disaster case), is checked when the run reaches it, before the restore
// writes anything to it or to the store.
func (c *Converger) checkRestoreTarget(ctx context.Context, spec *Spec, b *Backup) error {
	lead := spec.Managers()[0]
	first := lead.Name
	if !c.Machines.Store.Exists(first) {
		return nil
	}
	stored, err := c.Machines.Store.Load(first)
	if err != nil {
		return err
	}
	if moved, err := hostMoved(stored, lead); err != nil || moved {
		return err
	}
	s, err := c.swarmStateOf(ctx, first)
	if err != nil {
		return fmt.Errorf("%s, the first manager: cannot check its swarm before the restore (nothing was changed): %w", first, err)
	}
	if _, err := restoreAction(first, s, b.Manifest.SwarmID); err != nil {
		return fmt.Errorf("%w (nothing was changed)", err)
	}
	return nil
}

// swarmStateOf reads the swarm state of machine name.
func (c *Converger) swarmStateOf(ctx context.Context, name string) (bootstrap.State, error) {
	h, err := c.openSwarmNode(ctx, name)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		return bootstrap.State{}, err
	}
	return h.node.State(ctx)
}

// restoreSwarm puts the backup's state on the first manager (unless it
// runs the backup's swarm already) and makes the other machines ready to
// join it again.
func (c *Converger) restoreSwarm(ctx context.Context, hosts []*host, leaderName string) error {
	var lh *host
	for _, h := range hosts {
		if h.spec.Name == leaderName {
			lh = h
		}
	}
	if err := c.putSwarm(ctx, lh); err != nil {
		return err
	}
	ready, err := c.removeGoneManagers(ctx, lh)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if h == lh {
			continue
		}
		if err := c.leaveOldSwarm(ctx, h, ready); err != nil {
			return err
		}
	}
	return nil
}

// leaveOldSwarm makes h, unless it keeps its state (ready), leave what it
// has of the old swarm, whose managers are gone, to join the restored one
// (its old entry goes as a stale one).
func (c *Converger) leaveOldSwarm(ctx context.Context, h *host, ready map[string]bool) error {
	hs, err := h.node.State(ctx)
	if err != nil {
		return err
	}
	if keepsState(hs, ready, c.restore.Manifest.SwarmID) {
		return nil
	}
	if err := h.node.Leave(ctx, true); err != nil {
		return err
	}
	c.restoreEvent(h, ui.Changed, "left the old swarm's state ("+hs.LocalNodeState+") to join the restored one")
	return nil
}

func (c *Converger) restoreEvent(h *host, st ui.Status, detail string) {
	c.Machines.Progress.Event(h.spec.Name, "restore", st, detail)
}

// putSwarm puts the backup's swarm state on the leader, unless it runs
// that swarm already.
func (c *Converger) putSwarm(ctx context.Context, lh *host) error {
	b := c.restore
	s, err := lh.node.State(ctx)
	if err != nil {
		return err
	}
	step, err := restoreAction(lh.spec.Name, s, b.Manifest.SwarmID)
	if err != nil {
		return err
	}
	switch step {
	case restoreHas:
		c.restoreEvent(lh, ui.Unchanged, "runs swarm "+bootstrap.Short(s.ClusterID)+" already")
	case restorePut:
		c.restoreEvent(lh, ui.Started, "swarm "+bootstrap.Short(b.Manifest.SwarmID)+" from the backup of "+b.Manifest.Created.Format("2006-01-02 15:04 MST"))
		write := func(ctx context.Context, path string, data []byte) error {
			return lh.client.WriteFile(ctx, path, data, 0o600, "")
		}
		if err := bootstrap.PutSwarmState(ctx, lh.node, write, b.Swarm, lh.mach.Address, b.Key, c.Machines.Redactor.Redact); err != nil {
			c.restoreEvent(lh, ui.Failed, "")
			return err
		}
		c.restoreEvent(lh, ui.Changed, "new cluster of one manager at "+lh.mach.Address)
	}
	return nil
}

// removeGoneManagers removes the old managers that are not in the
// restored Raft group, and says which members are Ready (by node ID).
func (c *Converger) removeGoneManagers(ctx context.Context, lh *host) (map[string]bool, error) {
	s, err := lh.node.State(ctx)
	if err != nil {
		return nil, err
	}
	members, err := bootstrap.Members(ctx, lh.node)
	if err != nil {
		return nil, err
	}
	for _, m := range bootstrap.GoneManagers(members, s.NodeID) {
		// Not in the new Raft group: removed as they are (a demotion
		// would look for them there).
		if err := bootstrap.RemoveNode(ctx, lh.node, m.ID); err != nil {
			return nil, err
		}
		c.restoreEvent(lh, ui.Changed, "removed the old manager entry "+m.Hostname+" ("+bootstrap.Short(m.ID)+")")
	}
	if members, err = bootstrap.Members(ctx, lh.node); err != nil {
		return nil, err
	}
	ready := map[string]bool{}
	for _, m := range members {
		ready[m.ID] = m.Ready
	}
	return ready, nil
}

// keepsState reports whether a node keeps its swarm state after a
// restore: it has none, or it is a Ready member of the restored swarm.
func keepsState(hs bootstrap.State, ready map[string]bool, swarmID string) bool {
	if hs.LocalNodeState == bootstrap.StateInactive || hs.LocalNodeState == "" {
		return true
	}
	return hs.Active() && ready[hs.NodeID] && (hs.ClusterID == "" || hs.ClusterID == swarmID)
}

// labelsBack gives the nodes the labels the manifest has for their
// hostnames and they lack.
func (c *Converger) labelsBack(ctx context.Context, leader *host) error {
	members, err := bootstrap.Members(ctx, leader.node)
	if err != nil {
		return err
	}
	have := map[string]map[string]string{}
	for _, m := range members {
		n, _, err := leader.node.API.NodeInspectWithRaw(ctx, m.ID)
		if err != nil {
			return err
		}
		have[m.ID] = n.Spec.Labels
	}
	for id, labels := range bootstrap.LabelsBack(c.restore.Manifest, members, have) {
		got, err := bootstrap.EnsureNode(ctx, leader.node, id, bootstrap.NodeWant{Labels: labels})
		if err != nil {
			return err
		}
		if len(got) > 0 {
			c.Machines.Progress.Event(leader.spec.Name, "restore", ui.Changed, "node "+bootstrap.Short(id)+": "+strings.Join(got, ", "))
		}
	}
	return nil
}

// hostMoved tells whether the file names another host for a stored machine
// than the one it was made or adopted as (another driver, or another driver
// configuration: an adopted host's new address).
func hostMoved(stored *store.Machine, n Node) (bool, error) {
	if stored.Driver != n.Driver {
		return true, nil
	}
	want, err := json.Marshal(n.DriverConfig)
	if err != nil {
		return false, err
	}
	return !sameJSON(stored.DriverConfig, want), nil
}

// sameJSON compares two JSON documents by value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
