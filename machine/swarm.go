package machine

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// RootMaster follows --swarm-join to the machine that initialised the
// swarm. The master it returns, when another machine, is shared
// (store.LoadShared: every node's provisioning reads it): read it only.
func (m *Manager) RootMaster(mach *store.Machine) (*store.Machine, error) {
	cur := mach
	for i := 0; i < 8; i++ {
		if cur.Swarm == nil {
			return nil, fmt.Errorf("machine %q is not in a swarm made by shoal (create it with --swarm-master)", cur.Name)
		}
		if cur.Swarm.Master {
			return cur, nil
		}
		next, err := m.Store.LoadShared(cur.Swarm.Join)
		if err != nil {
			return nil, fmt.Errorf("%s: --swarm-join %s: %w", mach.Name, cur.Swarm.Join, err)
		}
		cur = next
	}
	return nil, fmt.Errorf("%s: --swarm-join goes round in circles", mach.Name)
}

func registryPort(s *store.Swarm) int {
	if s.RegistryPort == 0 {
		return bootstrap.DefaultRegistryPort
	}
	return s.RegistryPort
}

// swarmNeeds is what a swarm node needs of provisioning: /etc/hosts names
// the master, daemon.json trusts the swarm's registry by name and address.
func (m *Manager) swarmNeeds(mach *Machine) (hosts []provision.HostEntry, registries, ports []string, err error) {
	known := map[string]bool{}
	for _, h := range mach.Hosts {
		hosts = append(hosts, provision.HostEntry{IP: h.IP, Names: h.Names})
		known[h.IP] = true
	}
	if mach.Swarm == nil {
		return hosts, nil, nil, nil
	}
	master, err := m.RootMaster(mach.Machine)
	if err != nil {
		return nil, nil, nil, err
	}
	if master.Name != mach.Name && master.Address != "" && !known[master.Address] {
		hosts = append(hosts, masterEntry(master))
	}
	reg, err := m.registryHost(master)
	if err != nil {
		return nil, nil, nil, err
	}
	if reg != nil {
		registries, ports = registryNeeds(mach, master, reg)
	}
	if p := mach.Swarm.DataPathPort; p != 0 && p != 4789 {
		ports = append(ports, strconv.Itoa(p)+"/udp")
	}
	return hosts, registries, ports, nil
}

// masterEntry names the master in /etc/hosts by its hostname and, when
// another, its machine name.
func masterEntry(master *store.Machine) provision.HostEntry {
	names := []string{master.Hostname}
	if master.Name != master.Hostname {
		names = append(names, master.Name)
	}
	return provision.HostEntry{IP: master.Address, Names: names}
}

// registryNeeds are the names daemon.json trusts the registry (on reg) by,
// and the port the firewall lets in on reg itself.
func registryNeeds(mach *Machine, master, reg *store.Machine) (registries, ports []string) {
	port := strconv.Itoa(registryPort(master.Swarm))
	registries = append(registries, reg.Hostname+":"+port)
	if reg.Address != "" {
		registries = append(registries, reg.Address+":"+port)
	}
	if reg.Name == mach.Name {
		ports = append(ports, port+"/tcp") // the firewall lets the registry in
	}
	return registries, ports
}

// registryHost is the machine the swarm's registry runs on, nil for none:
// shared, as RootMaster's master is (read it only).
func (m *Manager) registryHost(master *store.Machine) (*store.Machine, error) {
	if !master.Swarm.Registry {
		return nil, nil
	}
	if master.Swarm.RegistryNode == "" || master.Swarm.RegistryNode == master.Name {
		return master, nil
	}
	return m.Store.LoadShared(master.Swarm.RegistryNode)
}

func labelMap(kv []string) map[string]string {
	out := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		out[k] = v
	}
	return out
}

// bootstrap puts a provisioned machine in its swarm, through its one SSH
// connection (and the master's, to fetch tokens and set roles). The swarm
// reconciler decides; a locked node is never left or re-initialised.
func (m *Manager) bootstrap(ctx context.Context, mach *Machine, client *sshrun.Client, restarted bool) error {
	if mach.Swarm == nil {
		return nil
	}
	node, err := mach.Node(client)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := m.loadImages(ctx, mach, node); err != nil {
		return err
	}
	req := m.swarmRequest(mach, node, restarted)
	root, closeMaster, err := m.joinThroughMaster(ctx, mach, &req)
	if err != nil {
		return err
	}
	defer closeMaster()
	if err := m.reconcileSwarm(ctx, mach, req, root); err != nil {
		return err
	}
	if mach.Swarm.Master {
		return m.ensureRegistry(ctx, mach, node)
	}
	return m.waitRegistry(ctx, mach, node)
}

// loadImages loads the swarm's image archives onto the node.
func (m *Manager) loadImages(ctx context.Context, mach *Machine, node *bootstrap.Node) error {
	for _, archive := range mach.Swarm.ImageArchives {
		m.Progress.Event(mach.Name, "images", ui.Started, archive)
		loaded, err := bootstrap.LoadImages(ctx, node, archive)
		if err != nil {
			m.Progress.Event(mach.Name, "images", ui.Failed, "")
			return err
		}
		m.Progress.Event(mach.Name, "images", status(loaded), archive)
	}
	return nil
}

// swarmRequest is what the reconciler is asked for the machine: its role,
// labels and availability, the policy its flags give, and the cluster's
// unlock key when this provisioning restarted a manager of it.
func (m *Manager) swarmRequest(mach *Machine, node *bootstrap.Node, restarted bool) bootstrap.Request {
	sw := mach.Swarm
	advertise := sw.AdvertiseAddr
	advertise = cmp.Or(advertise, mach.Address)
	want := bootstrap.Want{Name: mach.Name, Hostname: mach.Hostname, Role: bootstrap.RoleWorker, Labels: labelMap(sw.Labels), Availability: sw.Availability}
	if sw.Master || sw.Manager {
		want.Role = bootstrap.RoleManager
	}
	unlockHint := "'docker swarm unlock' on it (shoal never leaves or re-initialises a locked manager)"
	if mach.Cluster != "" {
		unlockHint = "'cluster unlock " + mach.Cluster + "'"
	}
	req := bootstrap.Request{
		Targets: []*bootstrap.Target{{Node: node, Want: want, Advertise: advertise}},
		Policy: bootstrap.Policy{Leader: mach.Name, ClusterID: sw.ClusterID, Force: sw.Force,
			ForceHint: "--swarm-force", UnlockHint: unlockHint},
	}
	// A manager of a cluster with autolock that this provisioning restarted
	// comes back locked: shoal unlocks what it locked, with the cluster's key.
	if restarted && mach.Cluster != "" {
		if key, err := os.ReadFile(m.Store.Cluster(mach.Cluster).UnlockKeyPath()); err == nil {
			req.UnlockKey = strings.TrimSpace(string(key))
			m.Redactor.Add(req.UnlockKey)
			req.Policy.Restarted = map[string]bool{mach.Name: true}
		}
	}
	return req
}

// joinThroughMaster makes a machine that is not the master join through
// its --swarm-join machine (the request's anchor and leader), and says the
// swarm's root master, whose lock the managers share.
func (m *Manager) joinThroughMaster(ctx context.Context, mach *Machine, req *bootstrap.Request) (root string, closeMaster func(), err error) {
	sw := mach.Swarm
	if sw.Master {
		return mach.Name, func() {}, nil
	}
	mgr, closeMgr, err := m.openMaster(ctx, sw.Join)
	if err != nil {
		return "", nil, fmt.Errorf("%s: swarm master: %w", mach.Name, err)
	}
	req.Anchors = []*bootstrap.Node{mgr}
	req.Policy.Leader = mgr.Name
	root = mach.Name
	if master, err := m.RootMaster(mach.Machine); err == nil {
		root = master.Name
		if req.Policy.ClusterID == "" && master.Swarm != nil {
			req.Policy.ClusterID = master.Swarm.ClusterID
		}
	}
	return root, closeMgr, nil
}

// reconcileSwarm runs the reconciler and stores the swarm's ID.
func (m *Manager) reconcileSwarm(ctx context.Context, mach *Machine, req bootstrap.Request, root string) error {
	r := &bootstrap.Reconciler{Event: m.Progress.Event, Redactor: m.Redactor, Parallel: 1,
		// Managers join and leave one at a time, across processes too.
		ManagerLock: func(ctx context.Context) (func(), error) { return m.Store.Lock(ctx, "swarm", root) }}
	out, err := r.Reconcile(ctx, req)
	if err != nil {
		return err
	}
	if sw := mach.Swarm; out.ClusterID != "" && out.ClusterID != sw.ClusterID {
		sw.ClusterID = out.ClusterID
		return m.Store.Save(mach.Machine)
	}
	return nil
}

// ensureRegistry runs the swarm's registry on the master (when it has one)
// and waits until it answers.
func (m *Manager) ensureRegistry(ctx context.Context, mach *Machine, node *bootstrap.Node) error {
	sw := mach.Swarm
	if !sw.Registry {
		return nil
	}
	ev := func(st ui.Status, detail string) { m.Progress.Event(mach.Name, "registry", st, detail) }
	reg := bootstrap.Registry{Hostname: mach.Hostname, Port: registryPort(sw), Image: sw.RegistryImage, Path: sw.RegistryPath}
	ev(ui.Started, "")
	created, err := bootstrap.EnsureRegistry(ctx, node, node.R, reg)
	if err != nil {
		ev(ui.Failed, "")
		return err
	}
	if err := bootstrap.WaitRegistry(ctx, node, mach.Hostname, registryPort(sw), 2*time.Minute); err != nil {
		ev(ui.Failed, "")
		return err
	}
	ev(status(created), fmt.Sprintf("%s:%d", mach.Hostname, registryPort(sw)))
	return nil
}

// waitRegistry waits until a node that is not the master reaches the
// swarm's registry (when it has one).
func (m *Manager) waitRegistry(ctx context.Context, mach *Machine, node *bootstrap.Node) error {
	master, err := m.RootMaster(mach.Machine)
	if err != nil {
		return err
	}
	reg, err := m.registryHost(master)
	if err != nil || reg == nil {
		return err
	}
	if err := bootstrap.WaitRegistry(ctx, node, reg.Hostname, registryPort(master.Swarm), 2*time.Minute); err != nil {
		return err
	}
	m.Progress.Event(mach.Name, "registry", ui.Unchanged, fmt.Sprintf("reachable at %s:%d", reg.Hostname, registryPort(master.Swarm)))
	return nil
}

func status(changed bool) ui.Status {
	if changed {
		return ui.Changed
	}
	return ui.Unchanged
}

// openMaster connects to the machine whose swarm mach joins.
func (m *Manager) openMaster(ctx context.Context, name string) (*bootstrap.Node, func(), error) {
	master, err := m.Load(name)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.Connect(ctx, master, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	n, err := master.Node(c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return n, func() { n.Close(); c.Close() }, nil
}

// rootName names the machine's swarm master, the root of its swarm (the
// machine itself when none is known).
func (m *Manager) rootName(mach *Machine) string {
	if master, err := m.RootMaster(mach.Machine); err == nil {
		return master.Name
	}
	return mach.Name
}

// leaveSwarm takes the machine out of its swarm before it is removed: a
// manager is demoted first (so the others keep their quorum), the node
// leaves, and a remaining manager drops it from the node list.
func (m *Manager) leaveSwarm(ctx context.Context, mach *Machine) error {
	if mach.Swarm == nil {
		return nil
	}
	c, err := m.Connect(ctx, mach, io.Discard)
	if err != nil {
		return err
	}
	defer c.Close()
	node, err := mach.Node(c)
	if err != nil {
		return err
	}
	defer node.Close()
	state, err := node.State(ctx)
	if err != nil {
		return err
	}
	if !state.Active() {
		return nil
	}
	// One node leaves at a time, so that a departing manager is never the
	// one another departing node relies on.
	root := m.rootName(mach)
	unlock, err := m.Store.Lock(ctx, "swarm", root)
	if err != nil {
		return err
	}
	defer unlock()
	other, closeOther := m.otherManager(ctx, mach.Name, root, state)
	defer closeOther()
	m.Progress.Event(mach.Name, "swarm-leave", ui.Started, "")
	if err := bootstrap.LeaveThrough(ctx, node, state, other); err != nil {
		return err
	}
	m.Progress.Event(mach.Name, "swarm-leave", ui.Changed, "")
	return nil
}

// otherManager finds a live manager of the same swarm among the stored
// machines other than self, the swarm's master first.
func (m *Manager) otherManager(ctx context.Context, self, master string, of bootstrap.State) (*bootstrap.Node, func()) {
	names, _ := m.Store.List()
	names = append([]string{master}, names...)
	for _, n := range names {
		if n == self {
			continue
		}
		if cfg, err := m.Store.Load(n); err != nil || cfg.Swarm == nil {
			continue
		}
		if node, closeNode := m.managerOf(ctx, n, of); node != nil {
			return node, closeNode
		}
	}
	return nil, func() {}
}

// managerOf opens machine n's engine when it is a live manager of the
// swarm of state of; nil when it is not.
func (m *Manager) managerOf(ctx context.Context, n string, of bootstrap.State) (*bootstrap.Node, func()) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	node, closeNode, err := m.openMaster(cctx, n)
	if err != nil {
		cancel()
		return nil, nil
	}
	st, err := node.State(cctx)
	cancel()
	if err == nil && st.Active() && st.Manager && bootstrap.SameSwarm(ctx, node, st, of) {
		return node, closeNode
	}
	closeNode()
	return nil, nil
}

// swarmColumn is the SWARM column of `machine ls`: the master's name, with
// "(master)" on the master itself.
func swarmColumn(mach *store.Machine) string {
	switch {
	case mach.Swarm == nil:
		return ""
	case mach.Swarm.Master:
		return mach.Name + " (master)"
	}
	return mach.Swarm.Join
}
