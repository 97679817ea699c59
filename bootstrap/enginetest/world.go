// Package enginetest is an in-memory Docker swarm behind the Engine API
// methods shoal uses (bootstrap.Engine): local node states, join tokens,
// Raft quorum, autolock, node roles and availability, and replicated
// services whose tasks move off drained or down nodes. It refuses what
// dockerd refuses, with dockerd's messages, so that tests of the
// reconciler meet the same answers as on real hosts. Every change is
// applied at once (no eventual consistency).
//
// It does not import bootstrap (bootstrap's own tests use it); tests assert
// `var _ bootstrap.Engine = (*enginetest.Engine)(nil)`.
package enginetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// World holds the engines and the swarms they form. One lock guards it all:
// the reconciler calls engines in parallel.
type World struct {
	mu       sync.Mutex
	seq      int
	engines  []*Engine
	clusters []*cluster
	// Version is the ServerVersion engines report.
	Version string
}

// NewWorld returns an empty world.
func NewWorld() *World { return &World{Version: "28.5.2"} }

// NewEngine adds a host with a fresh engine in no swarm. addr is where the
// others reach it (what a join's remote address names).
func NewEngine(w *World, hostname, addr string) *Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := &Engine{w: w, hostname: hostname, addr: addr, up: true, state: swarm.LocalNodeStateInactive, images: map[string]string{}}
	w.engines = append(w.engines, e)
	return e
}

// Engine returns the engine of a host.
func (w *World) Engine(hostname string) *Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.engine(hostname)
}

func (w *World) engine(hostname string) *Engine {
	for _, e := range w.engines {
		if e.hostname == hostname {
			return e
		}
	}
	panic("enginetest: no host " + hostname)
}

// Kill stops a host's engine: its API calls fail as a daemon that does not
// answer, and the swarm sees its node down.
func (w *World) Kill(hostname string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.engine(hostname)
	e.up = false
	if e.c != nil {
		e.c.settle()
	}
}

// Restart restarts a host's engine (also one that was killed). A manager of
// a swarm with autolock comes back locked; a member whose swarm has no
// quorum comes back pending until it has.
func (w *World) Restart(hostname string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.engine(hostname)
	e.up = true
	if e.c == nil {
		if e.state == swarm.LocalNodeStatePending { // a join's retries are lost
			e.state = swarm.LocalNodeStateInactive
		}
		return
	}
	ent := e.entry()
	if ent != nil {
		// The node registers with the managers again: its record changes.
		ent.version = e.c.bump()
	}
	if ent != nil && ent.role == swarm.NodeRoleManager && e.c.spec.EncryptionConfig.AutoLockManagers {
		e.state, e.errMsg = swarm.LocalNodeStateLocked, errLocked.Error()
	} else if e.state != swarm.LocalNodeStateLocked && e.state != swarm.LocalNodeStateError {
		e.state = swarm.LocalNodeStatePending
	}
	e.c.settle()
}

// Wipe replaces a host: a new engine in no swarm answers at the same
// hostname and address; the old node's entry stays in its swarm, down.
func (w *World) Wipe(hostname string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.engine(hostname)
	e.detach()
	e.up = true
	e.images = map[string]string{}
}

// Move gives a host a new address, as a new DHCP lease does. The swarm
// sees a node at the address it connects from, but the other managers
// still send Raft messages to a manager's old address: a moved manager is
// unreachable until it joins again.
func (w *World) Move(hostname, addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.engine(hostname)
	e.addr = addr
	if n := e.entry(); n != nil {
		n.addr = addr
		e.c.settle()
	}
}

// ResetCalls empties every engine's call log.
func (w *World) ResetCalls() {
	for _, e := range w.engines {
		e.ResetCalls()
	}
}

// Mutations lists, by hostname, the calls that changed something (hosts
// with none are left out).
func (w *World) Mutations() map[string][]string {
	out := map[string][]string{}
	for _, e := range w.engines {
		if m := e.Mutations(); len(m) > 0 {
			out[e.hostname] = m
		}
	}
	return out
}

// newID makes a swarm-style ID (25 characters), distinct and repeatable.
func (w *World) newID() string {
	w.seq++
	sum := sha256.Sum256([]byte(fmt.Sprint("enginetest", w.seq)))
	return hex.EncodeToString(sum[:])[:25]
}

// cluster is one swarm.
type cluster struct {
	w               *World
	id              string
	index           uint64 // Raft index: every write bumps it
	version         uint64 // the swarm object's version
	created         time.Time
	spec            swarm.Spec
	workerToken     string
	managerToken    string
	unlockKey       string
	nodes           []*entry
	leader          string
	services        []*service
	tasks           []*swarm.Task
	servicesVersion uint64
	// Set at init only, as Docker's.
	addrPool     []netip.Prefix
	subnetSize   uint32
	dataPathPort uint32
	networks     map[string]*network.Inspect
}

// entry is a node in the swarm's list; eng is the engine that holds its
// identity (nil once that engine left or was replaced).
type entry struct {
	id, hostname, addr string
	raft               string // a manager's Raft address: where it was when it became one
	role               swarm.NodeRole
	avail              swarm.NodeAvailability
	labels             map[string]string
	version            uint64
	eng                *Engine
}

type service struct {
	id      string
	version uint64
	spec    swarm.ServiceSpec
}

func (c *cluster) bump() uint64 {
	c.index++
	return c.index
}

// ready: the node's engine runs in this swarm as this node.
func (c *cluster) ready(n *entry) bool {
	e := n.eng
	return e != nil && e.up && e.c == c && e.nodeID == n.id && e.state == swarm.LocalNodeStateActive
}

// inRaft: a manager whose engine runs Raft (a locked one does not) where
// the other managers reach it (its Raft address).
func (c *cluster) inRaft(n *entry) bool {
	e := n.eng
	return n.role == swarm.NodeRoleManager && e != nil && e.up && e.c == c && e.nodeID == n.id && n.raft == n.addr &&
		(e.state == swarm.LocalNodeStateActive || e.state == swarm.LocalNodeStatePending)
}

func (c *cluster) managers() (all, reachable int) {
	for _, n := range c.nodes {
		if n.role == swarm.NodeRoleManager {
			all++
			if c.inRaft(n) {
				reachable++
			}
		}
	}
	return all, reachable
}

func (c *cluster) quorum() bool {
	all, reachable := c.managers()
	return all > 0 && reachable > all/2
}

// settle does what the swarm does by itself after a change: members that
// wait for a quorum become active once there is one, a leader is elected,
// and tasks are scheduled.
func (c *cluster) settle() {
	if !c.quorum() {
		c.leader = ""
		return
	}
	for _, n := range c.nodes {
		if e := n.eng; e != nil && e.up && e.c == c && e.nodeID == n.id && e.state == swarm.LocalNodeStatePending {
			e.state, e.errMsg = swarm.LocalNodeStateActive, ""
		}
	}
	if l := c.node(c.leader); l == nil || !c.inRaft(l) {
		c.leader = ""
		for _, n := range c.nodes {
			if c.inRaft(n) {
				c.leader = n.id
				break
			}
		}
	}
	c.schedule()
}

// node finds an entry by ID, unique ID prefix or hostname, as dockerd does.
func (c *cluster) node(ref string) *entry {
	if ref == "" {
		return nil
	}
	var byPrefix []*entry
	for _, n := range c.nodes {
		if n.id == ref {
			return n
		}
		if strings.HasPrefix(n.id, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0]
	}
	for _, n := range c.nodes {
		if n.hostname == ref {
			return n
		}
	}
	return nil
}

func (c *cluster) add(e *Engine, role swarm.NodeRole, addr string, avail swarm.NodeAvailability) *entry {
	if avail == "" {
		avail = swarm.NodeAvailabilityActive
	}
	n := &entry{id: c.w.newID(), hostname: e.hostname, addr: addr, role: role, avail: avail, eng: e}
	if role == swarm.NodeRoleManager {
		n.raft = addr
	}
	n.version = c.bump()
	c.nodes = append(c.nodes, n)
	e.c, e.nodeID, e.state, e.errMsg = c, n.id, swarm.LocalNodeStateActive, ""
	return n
}

func (c *cluster) newTokens() {
	secret := c.w.newID()
	c.workerToken = "SWMTKN-1-" + secret + "-" + c.w.newID()
	c.managerToken = "SWMTKN-1-" + secret + "-" + c.w.newID()
}

func (c *cluster) info() swarm.ClusterInfo {
	return swarm.ClusterInfo{ID: c.id, Meta: swarm.Meta{Version: swarm.Version{Index: c.version}, CreatedAt: c.created}, Spec: c.spec,
		DefaultAddrPool: slices.Clone(c.addrPool), SubnetSize: c.subnetSize, DataPathPort: c.dataPathPort}
}

func (c *cluster) apiNode(n *entry) swarm.Node {
	out := swarm.Node{
		ID:   n.id,
		Meta: swarm.Meta{Version: swarm.Version{Index: n.version}},
		Spec: swarm.NodeSpec{
			Annotations: swarm.Annotations{Labels: copyMap(n.labels)},
			Role:        n.role, Availability: n.avail,
		},
		Description: swarm.NodeDescription{Hostname: n.hostname, Engine: swarm.EngineDescription{EngineVersion: c.w.Version}},
		Status:      swarm.NodeStatus{State: swarm.NodeStateDown, Addr: n.addr},
	}
	if c.ready(n) {
		out.Status.State = swarm.NodeStateReady
	}
	if n.role == swarm.NodeRoleManager {
		ms := &swarm.ManagerStatus{Leader: n.id == c.leader, Reachability: swarm.ReachabilityUnreachable, Addr: net.JoinHostPort(n.raft, "2377")}
		if c.inRaft(n) {
			ms.Reachability = swarm.ReachabilityReachable
		}
		out.ManagerStatus = ms
	}
	return out
}

// schedule keeps each replicated service at its replica count: tasks on
// nodes that are down or drained are shut down and replaced on the active
// ready node with the fewest tasks that meets the placement constraints.
func (c *cluster) schedule() {
	running := map[string]int{}
	for _, t := range c.tasks {
		if t.DesiredState != swarm.TaskStateRunning || t.NodeID == "" {
			continue
		}
		if n := c.node(t.NodeID); n == nil || !c.ready(n) || n.avail == swarm.NodeAvailabilityDrain {
			c.stop(t)
			continue
		}
		running[t.NodeID]++
	}
	for _, s := range c.services {
		want := 0
		if r := s.spec.Mode.Replicated; r != nil && r.Replicas != nil {
			want = int(*r.Replicas)
		}
		for _, t := range c.tasks {
			if t.ServiceID == s.id && t.DesiredState == swarm.TaskStateRunning && t.Slot > want {
				if t.NodeID != "" {
					running[t.NodeID]--
				}
				c.stop(t)
			}
		}
		for slot := 1; slot <= want; slot++ {
			i := slices.IndexFunc(c.tasks, func(t *swarm.Task) bool {
				return t.ServiceID == s.id && t.Slot == slot && t.DesiredState == swarm.TaskStateRunning
			})
			if i < 0 {
				c.tasks = append(c.tasks, &swarm.Task{
					ID: c.w.newID(), Meta: swarm.Meta{Version: swarm.Version{Index: c.bump()}}, ServiceID: s.id, Slot: slot,
					DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStatePending, Message: "pending task scheduling"},
				})
				i = len(c.tasks) - 1
			}
			t := c.tasks[i]
			if t.NodeID != "" {
				continue
			}
			var best *entry
			for _, n := range c.nodes {
				if c.ready(n) && n.avail == swarm.NodeAvailabilityActive && matches(n, s.spec.TaskTemplate.Placement) &&
					(best == nil || running[n.id] < running[best.id]) {
					best = n
				}
			}
			if best != nil {
				t.NodeID, t.Status = best.id, swarm.TaskStatus{State: swarm.TaskStateRunning, Message: "started"}
				t.Version.Index = c.bump()
				running[best.id]++
			}
		}
	}
}

func (c *cluster) stop(t *swarm.Task) {
	t.DesiredState, t.Status = swarm.TaskStateShutdown, swarm.TaskStatus{State: swarm.TaskStateShutdown, Message: "shutdown"}
	t.Version.Index = c.bump()
}

// matches evaluates node.hostname, node.id, node.role and node.labels.K
// constraints (== and !=); any other constraint never matches.
func matches(n *entry, p *swarm.Placement) bool {
	if p == nil {
		return true
	}
	for _, con := range p.Constraints {
		k, v, eq := strings.Cut(con, "==")
		if !eq {
			var ok bool
			if k, v, ok = strings.Cut(con, "!="); !ok {
				return false
			}
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var have string
		switch {
		case k == "node.hostname":
			have = n.hostname
		case k == "node.id":
			have = n.id
		case k == "node.role":
			have = string(n.role)
		case strings.HasPrefix(k, "node.labels."):
			have = n.labels[strings.TrimPrefix(k, "node.labels.")]
		default:
			return false
		}
		if (have == v) != eq {
			return false
		}
	}
	return true
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
