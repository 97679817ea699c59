package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
)

// DefaultDrainTimeout bounds the wait for a leaving node's tasks to move.
const DefaultDrainTimeout = 5 * time.Minute

// leaving lists the cluster's stored machines that the file no longer has
// (a block removed, a lower count), in name order.
func (c *Converger) leaving(spec *Spec) ([]string, error) {
	stored, err := machinesOf(c.Machines.Store, spec.Name)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, m := range spec.Machines {
		in[m.Name] = true
	}
	var out []string
	for _, n := range stored {
		if !in[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// removalVerb is what happens to a leaving machine after it leaves the
// swarm: a machine shoal made is removed, an adopted host is forgotten.
func removalVerb(m *machine.Machine) string {
	if drivers.Adopts(m.Driver) {
		return "forget"
	}
	return "remove"
}

// openSwarmNode connects to a stored machine's engine, bounded.
func (c *Converger) openSwarmNode(ctx context.Context, name string) (*host, error) {
	mach, err := c.Machines.Load(name)
	if err != nil {
		return nil, err
	}
	h := &host{mach: mach, spec: Node{Name: name}}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if h.client, err = c.Machines.Connect(cctx, mach, io.Discard); err != nil {
		return h, err
	}
	if h.node, err = mach.Node(h.client); err != nil {
		return h, err
	}
	return h, nil
}

// checkRemovals refuses, before anything changes, a removal that would
// lose the Raft quorum or leave no manager.
func (c *Converger) checkRemovals(ctx context.Context, spec *Spec, leaving []string) error {
	if len(leaving) == 0 {
		return nil
	}
	if err := c.checkRegistryStays(spec, leaving); err != nil {
		return err
	}
	mgr, members, err := c.liveManager(ctx, spec)
	if err != nil || mgr == nil {
		return err
	}
	defer mgr.close()
	going := map[string]bool{}
	for _, n := range leaving {
		mach, err := c.Machines.Load(n)
		if err != nil {
			return err
		}
		if m, ok := bootstrap.MemberOf(members, "", mach.Hostname); ok {
			going[m.ID] = true
		}
	}
	_, err = bootstrap.QuorumCheck(members, going, 0)
	return err
}

// checkRegistryStays refuses the removal of the registry's node while the
// registry is on: its data lives there. The node is the file's, or the
// one the last run left it on.
func (c *Converger) checkRegistryStays(spec *Spec, leaving []string) error {
	if !spec.Registry.Enabled {
		return nil
	}
	regHost := ""
	if prev, err := LoadState(c.Machines.Store, spec.Name); err == nil && prev.Registry != "" {
		regHost, _, _ = strings.Cut(prev.Registry, ":")
	}
	for _, n := range leaving {
		mach, err := c.Machines.Load(n)
		if err != nil {
			return err
		}
		if n == spec.Registry.Node || mach.Hostname == regHost {
			return fmt.Errorf("%s runs the registry (its images are on that node): keep it, or set registry { enabled = false } first", n)
		}
	}
	return nil
}

// liveManager finds a reachable manager of the cluster's swarm among the
// file's managers and returns it with the swarm's node list; nil when none
// answers (then there is no swarm to harm).
func (c *Converger) liveManager(ctx context.Context, spec *Spec) (*host, []bootstrap.Member, error) {
	for _, m := range spec.Managers() {
		if !c.Machines.Store.Exists(m.Name) {
			continue
		}
		h, err := c.openSwarmNode(ctx, m.Name)
		if err != nil {
			h.close()
			continue
		}
		s, err := h.node.State(ctx)
		if err != nil || !s.Active() || !s.Manager {
			h.close()
			continue
		}
		members, err := bootstrap.Members(ctx, h.node)
		if err != nil {
			h.close()
			return nil, nil, err
		}
		return h, members, nil
	}
	return nil, nil, nil
}

// retire takes the leaving machines out of the swarm through the leader
// (drain, demote, leave, remove the entry), then removes or forgets them.
func (c *Converger) retire(ctx context.Context, leader *host, names []string) error {
	var leaving []bootstrap.Leaving
	var hosts []*host
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	for _, n := range names {
		h, err := c.openSwarmNode(ctx, n)
		if h == nil {
			return err
		}
		hosts = append(hosts, h)
		l := bootstrap.Leaving{Name: n, Hostname: h.mach.Hostname}
		if err == nil {
			l.Node = h.node
		} else {
			c.Machines.Progress.Event(n, "swarm-leave", ui.Info, "does not answer: its entry is removed through "+leader.spec.Name)
		}
		leaving = append(leaving, l)
	}
	if err := c.reconciler().Retire(ctx, leader.node, leaving, c.drainTimeout()); err != nil {
		return err
	}
	return c.removeRetired(ctx, hosts)
}

// removeRetired removes (or forgets, when adopted) the machines out of the
// swarm now.
func (c *Converger) removeRetired(ctx context.Context, hosts []*host) error {
	for _, h := range hosts {
		verb := removalVerb(h.mach)
		h.close()
		if err := c.Machines.Remove(ctx, h.mach.Name, true); err != nil {
			return fmt.Errorf("%s: %s: %w", h.mach.Name, verb, err)
		}
		c.Machines.Progress.Event(h.mach.Name, verb, ui.Changed, "")
	}
	return nil
}

// Unlock unlocks every locked manager of the cluster with the key shoal
// keeps, and does nothing else to any node. It says which it unlocked.
func (c *Converger) Unlock(ctx context.Context, name string) ([]string, error) {
	names, err := machinesOf(c.Machines.Store, name)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no cluster %q here (see 'cluster ls')", name)
	}
	key, err := os.ReadFile(c.Machines.Store.Cluster(name).UnlockKeyPath())
	if err != nil {
		return nil, fmt.Errorf("cluster %s: no unlock key in the store (is swarm { autolock = true } set and was 'cluster up' run?): %w", name, err)
	}
	k := strings.TrimSpace(string(key))
	c.Machines.Redactor.Add(k)
	var hosts []*host
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	var nodes []*bootstrap.Node
	for _, n := range names {
		h, err := c.openSwarmNode(ctx, n)
		if h != nil {
			hosts = append(hosts, h)
		}
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, h.node)
	}
	return bootstrap.UnlockLocked(ctx, c.reconciler(), nodes, k)
}
