package machine

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// rootMaster follows --swarm-join to the machine that initialised the swarm.
func (m *Manager) RootMaster(mach *store.Machine) (*store.Machine, error) {
	cur := mach
	for i := 0; i < 8; i++ {
		if cur.Swarm == nil {
			return nil, fmt.Errorf("machine %q is not in a swarm made by shoal (create it with --swarm-master)", cur.Name)
		}
		if cur.Swarm.Master {
			return cur, nil
		}
		next, err := m.Store.Load(cur.Swarm.Join)
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
		names := []string{master.Hostname}
		if master.Name != master.Hostname {
			names = append(names, master.Name)
		}
		hosts = append(hosts, provision.HostEntry{IP: master.Address, Names: names})
	}
	if reg, err := m.registryHost(master); err != nil {
		return nil, nil, nil, err
	} else if reg != nil {
		port := strconv.Itoa(registryPort(master.Swarm))
		registries = append(registries, reg.Hostname+":"+port)
		if reg.Address != "" {
			registries = append(registries, reg.Address+":"+port)
		}
		if reg.Name == mach.Name {
			ports = append(ports, port+"/tcp") // the firewall lets the registry in
		}
	}
	return hosts, registries, ports, nil
}

// registryHost is the machine the swarm's registry runs on, nil for none.
func (m *Manager) registryHost(master *store.Machine) (*store.Machine, error) {
	if !master.Swarm.Registry {
		return nil, nil
	}
	if master.Swarm.RegistryNode == "" || master.Swarm.RegistryNode == master.Name {
		return master, nil
	}
	return m.Store.Load(master.Swarm.RegistryNode)
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
// connection (and the master's, to fetch tokens and set roles).
func (m *Manager) bootstrap(ctx context.Context, mach *Machine, client *sshrun.Client) error {
	sw := mach.Swarm
	if sw == nil {
		return nil
	}
	ev := func(step string, st ui.Status, detail string) { m.Progress.Event(mach.Name, step, st, detail) }
	node, err := bootstrap.Open(mach.Name, mach.Hostname, mach.Address, client)
	if err != nil {
		return err
	}
	defer node.Close()
	for _, archive := range sw.ImageArchives {
		ev("images", ui.Started, archive)
		loaded, err := bootstrap.LoadImages(ctx, node, archive)
		if err != nil {
			ev("images", ui.Failed, "")
			return err
		}
		ev("images", status(loaded), archive)
	}
	state, err := node.State(ctx)
	if err != nil {
		return err
	}
	advertise := sw.AdvertiseAddr
	if advertise == "" {
		advertise = mach.Address
	}
	want := bootstrap.NodeWant{Role: "worker", Labels: labelMap(sw.Labels), Availability: sw.Availability}
	if sw.Master || sw.Manager {
		want.Role = "manager"
	}
	if sw.Master {
		return m.bootstrapMaster(ctx, mach, node, state, advertise, want, ev)
	}
	return m.bootstrapJoin(ctx, mach, node, state, advertise, want, ev)
}

func status(changed bool) ui.Status {
	if changed {
		return ui.Changed
	}
	return ui.Unchanged
}

func (m *Manager) bootstrapMaster(ctx context.Context, mach *Machine, node *bootstrap.Node, state bootstrap.State, advertise string, want bootstrap.NodeWant, ev func(string, ui.Status, string)) error {
	sw := mach.Swarm
	switch {
	case state.Active() && state.Manager:
		ev("swarm-init", ui.Unchanged, "manager of swarm "+short(state.ClusterID))
	case state.Active() && !sw.Force:
		return fmt.Errorf("%s is a worker of another swarm (cluster %s): use --swarm-force to make it leave and start a new one", mach.Name, short(state.ClusterID))
	default:
		if state.LocalNodeState != string(swarm.LocalNodeStateInactive) {
			if err := node.Leave(ctx, true); err != nil {
				return err
			}
		}
		ev("swarm-init", ui.Started, advertise)
		if err := node.Init(ctx, advertise); err != nil {
			ev("swarm-init", ui.Failed, "")
			return err
		}
		ev("swarm-init", ui.Changed, advertise)
	}
	state, err := node.State(ctx)
	if err != nil {
		return err
	}
	changed, err := bootstrap.EnsureNode(ctx, node, state.NodeID, want)
	if err != nil {
		return err
	}
	if len(changed) > 0 {
		ev("swarm-node", ui.Changed, strings.Join(changed, ", "))
	}
	if !sw.Registry {
		return nil
	}
	reg := bootstrap.Registry{Hostname: mach.Hostname, Port: registryPort(sw), Image: sw.RegistryImage, Path: sw.RegistryPath}
	ev("registry", ui.Started, "")
	created, err := bootstrap.EnsureRegistry(ctx, node, node.R, reg)
	if err != nil {
		ev("registry", ui.Failed, "")
		return err
	}
	if err := bootstrap.WaitRegistry(ctx, node, mach.Hostname, registryPort(sw), 2*time.Minute); err != nil {
		ev("registry", ui.Failed, "")
		return err
	}
	ev("registry", status(created), fmt.Sprintf("%s:%d", mach.Hostname, registryPort(sw)))
	return nil
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
	n, err := bootstrap.Open(master.Name, master.Hostname, master.Address, c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return n, func() { n.Close(); c.Close() }, nil
}

func (m *Manager) bootstrapJoin(ctx context.Context, mach *Machine, node *bootstrap.Node, state bootstrap.State, advertise string, want bootstrap.NodeWant, ev func(string, ui.Status, string)) error {
	sw := mach.Swarm
	mgr, closeMgr, err := m.openMaster(ctx, sw.Join)
	if err != nil {
		return fmt.Errorf("%s: swarm master: %w", mach.Name, err)
	}
	defer closeMgr()
	mstate, err := mgr.State(ctx)
	if err != nil {
		return err
	}
	if !mstate.Active() || !mstate.Manager {
		return fmt.Errorf("%s is not a swarm manager (state %s): create it with --swarm-master first", sw.Join, mstate.LocalNodeState)
	}
	switch {
	case state.Active() && bootstrap.SameSwarm(ctx, mgr, mstate, state):
		ev("swarm-join", ui.Unchanged, "in the swarm of "+sw.Join)
	case state.Active() && !sw.Force:
		return fmt.Errorf("%s belongs to another swarm (%s does not know node %s): use --swarm-force to make it leave and join %s's", mach.Name, sw.Join, short(state.NodeID), sw.Join)
	default:
		if state.LocalNodeState != string(swarm.LocalNodeStateInactive) {
			if err := node.Leave(ctx, true); err != nil {
				return err
			}
		}
		if want.Role == "manager" {
			// Managers join one at a time: raft adds one member at once.
			root := sw.Join
			if master, err := m.RootMaster(mach.Machine); err == nil {
				root = master.Name
			}
			unlock, err := m.Store.Lock(ctx, "swarm", root)
			if err != nil {
				return err
			}
			defer unlock()
		}
		workerToken, managerToken, err := bootstrap.Tokens(ctx, mgr)
		if err != nil {
			return err
		}
		m.Redactor.Add(workerToken)
		m.Redactor.Add(managerToken)
		token := workerToken
		if want.Role == "manager" {
			token = managerToken
		}
		ev("swarm-join", ui.Started, sw.Join+" as "+want.Role)
		if err := node.Join(ctx, advertise, mgr.Addr, token, m.Redactor.Redact); err != nil {
			ev("swarm-join", ui.Failed, "")
			return err
		}
		ev("swarm-join", ui.Changed, sw.Join+" as "+want.Role)
	}
	state, err = node.State(ctx)
	if err != nil {
		return err
	}
	changed, err := bootstrap.EnsureNode(ctx, mgr, state.NodeID, want)
	if err != nil {
		return err
	}
	if len(changed) > 0 {
		ev("swarm-node", ui.Changed, strings.Join(changed, ", "))
	}
	if err := bootstrap.WaitReady(ctx, mgr, state.NodeID, 2*time.Minute); err != nil {
		return err
	}
	master, err := m.RootMaster(mach.Machine)
	if err != nil {
		return err
	}
	if reg, err := m.registryHost(master); err != nil {
		return err
	} else if reg != nil {
		if err := bootstrap.WaitRegistry(ctx, node, reg.Hostname, registryPort(master.Swarm), 2*time.Minute); err != nil {
			return err
		}
		ev("registry", ui.Unchanged, fmt.Sprintf("reachable at %s:%d", reg.Hostname, registryPort(master.Swarm)))
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
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
	node, err := bootstrap.Open(mach.Name, mach.Hostname, mach.Address, c)
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
	root := mach.Name
	if master, err := m.RootMaster(mach.Machine); err == nil {
		root = master.Name
	}
	unlock, err := m.Store.Lock(ctx, "swarm", root)
	if err != nil {
		return err
	}
	defer unlock()
	other, closeOther := m.otherManager(ctx, mach.Name, root, state)
	defer closeOther()
	m.Progress.Event(mach.Name, "swarm-leave", ui.Started, "")
	if state.Manager && other != nil {
		if _, err := bootstrap.EnsureNode(ctx, other, state.NodeID, bootstrap.NodeWant{Role: "worker"}); err != nil {
			return err
		}
		if err := waitNode(ctx, other, state.NodeID, func(n swarm.Node) bool { return n.ManagerStatus == nil }); err != nil {
			return err
		}
	}
	// Only the last manager (or one whose peers cannot be reached) must force.
	if err := node.Leave(ctx, state.Manager && other == nil); err != nil {
		return err
	}
	if other != nil {
		_ = waitNode(ctx, other, state.NodeID, func(n swarm.Node) bool { return n.Status.State == swarm.NodeStateDown })
		if err := bootstrap.RemoveNode(ctx, other, state.NodeID); err != nil {
			return err
		}
	}
	m.Progress.Event(mach.Name, "swarm-leave", ui.Changed, "")
	return nil
}

func waitNode(ctx context.Context, mgr *bootstrap.Node, id string, ok func(swarm.Node) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, id)
		if err == nil && ok(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s on %s: %w", id, mgr.Name, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
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
		cfg, err := m.Store.Load(n)
		if err != nil || cfg.Swarm == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		node, closeNode, err := m.openMaster(cctx, n)
		if err != nil {
			cancel()
			continue
		}
		st, err := node.State(cctx)
		cancel()
		if err == nil && st.Active() && st.Manager && bootstrap.SameSwarm(ctx, node, st, of) {
			return node, closeNode
		}
		closeNode()
	}
	return nil, func() {}
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
