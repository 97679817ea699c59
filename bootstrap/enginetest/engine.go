package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// dockerd's answers (daemon/cluster and swarmkit's controlapi).
var (
	errDown        = errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
	errLocked      = unavailable(errors.New(`Swarm is encrypted and locked. Please run "docker swarm unlock" to unlock it.`))
	errNoSwarm     = unavailable(errors.New("This node is not part of a swarm"))
	errNotManager  = unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))
	errWorker      = unavailable(errors.New("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."))
	errNoLeader    = unavailable(errors.New("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."))
	errSwarmExists = unavailable(errors.New(`This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`))
	errNotLocked   = unavailable(errors.New("Swarm is not locked."))
	errBadKey      = invalidParameter(errors.New("swarm could not be unlocked: invalid key provided"))
	errBadToken    = invalidParameter(errors.New("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"))
	errJoinTimeout = errors.New(`Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.`)
	errSequence    = errors.New("rpc error: code = Unknown desc = update out of sequence")
)

// Engine is one host's Docker engine.
type Engine struct {
	w              *World
	hostname, addr string
	up             bool
	state          swarm.LocalNodeState
	errMsg         string
	c              *cluster
	nodeID         string
	images         map[string]string // tag -> image ID
	calls          []string
	slow           *slowJoin
}

// slowJoin is a join that outlives dockerd's own limit (SlowJoin).
type slowJoin struct {
	infos int    // Info calls until the background join ends
	fail  string // the node's error when it ends ("": it joined)
	// what the join asked, once it began
	c     *cluster
	role  swarm.NodeRole
	addr  string
	avail swarm.NodeAvailability
}

// SlowJoin makes the engine's next join take longer than dockerd's limit,
// as on a slow or busy host: SwarmJoin answers dockerd's timeout ("The
// attempt to join the swarm will continue in the background") and leaves
// the node pending; after infos more Info calls the join ends, in the swarm
// or, with fail, in state error with fail as the node's error.
func (e *Engine) SlowJoin(infos int, fail string) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.slow = &slowJoin{infos: infos, fail: fail}
}

// slowJoinStep counts an Info call against a pending slow join, and ends
// the join when its time has come (world locked).
func (e *Engine) slowJoinStep() {
	j := e.slow
	if j == nil || j.c == nil {
		return
	}
	if j.infos--; j.infos > 0 {
		return
	}
	e.slow = nil
	if j.fail != "" {
		e.state, e.errMsg = swarm.LocalNodeStateError, j.fail
		return
	}
	j.c.add(e, j.role, j.addr, j.avail)
	j.c.settle()
}

// Calls lists the API calls made to the engine, in order ("Info",
// "SwarmJoin", "NodeUpdate <id>", ...).
func (e *Engine) Calls() []string {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	return slices.Clone(e.calls)
}

// Count says how many calls of a method the engine got.
func (e *Engine) Count(method string) int {
	n := 0
	for _, c := range e.Calls() {
		if m, _, _ := strings.Cut(c, " "); m == method {
			n++
		}
	}
	return n
}

// Mutations lists the calls that change a swarm, a node or an image.
func (e *Engine) Mutations() []string {
	var out []string
	for _, c := range e.Calls() {
		switch m, _, _ := strings.Cut(c, " "); m {
		case "SwarmInit", "SwarmJoin", "SwarmLeave", "SwarmUnlock", "SwarmUpdate", "NodeUpdate", "NodeRemove",
			"ServiceCreate", "ServiceUpdate", "ImageLoad", "NetworkRemove", "NetworkCreate":
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls empties the call log.
func (e *Engine) ResetCalls() {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.calls = nil
}

// begin locks the world and logs the call; the caller unlocks.
func (e *Engine) begin(call string) error {
	e.w.mu.Lock()
	e.calls = append(e.calls, call)
	if !e.up {
		return errDown
	}
	return nil
}

func (e *Engine) end() { e.w.mu.Unlock() }

func (e *Engine) entry() *entry {
	if e.c == nil {
		return nil
	}
	for _, n := range e.c.nodes {
		if n.id == e.nodeID {
			return n
		}
	}
	return nil
}

// detach takes the engine out of its swarm; its entry stays, down.
func (e *Engine) detach() {
	c := e.c
	if n := e.entry(); n != nil {
		n.eng = nil
	}
	e.c, e.nodeID, e.errMsg = nil, "", ""
	e.state = swarm.LocalNodeStateInactive
	if c != nil {
		c.settle()
	}
}

// manage begins a call that needs a manager: the swarm this engine can
// manage, or dockerd's refusal.
func (e *Engine) manage(call string) (*cluster, error) {
	if err := e.begin(call); err != nil {
		return nil, err
	}
	return e.control()
}

// control is the swarm this engine can manage, or dockerd's refusal.
func (e *Engine) control() (*cluster, error) {
	switch e.state {
	case swarm.LocalNodeStateLocked:
		return nil, errLocked
	case swarm.LocalNodeStateActive:
	default:
		return nil, errNotManager
	}
	if n := e.entry(); n == nil || n.role != swarm.NodeRoleManager {
		return nil, errWorker
	}
	if !e.c.quorum() {
		return nil, errNoLeader
	}
	return e.c, nil
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (e *Engine) Info(ctx context.Context) (system.Info, error) {
	defer e.end()
	if err := e.begin("Info"); err != nil {
		return system.Info{}, err
	}
	e.slowJoinStep()
	info := system.Info{Name: e.hostname, ServerVersion: e.w.Version}
	s := &info.Swarm
	s.LocalNodeState, s.Error = e.state, e.errMsg
	if e.state == swarm.LocalNodeStateActive || e.state == swarm.LocalNodeStatePending {
		s.NodeID = e.nodeID // a pending member knows its ID from its certificate
	}
	if n := e.entry(); n != nil && e.state == swarm.LocalNodeStateActive {
		s.NodeAddr = n.addr
		if n.role == swarm.NodeRoleManager {
			// As dockerd: a manager without a leader still says it manages,
			// with an empty cluster and the error.
			s.ControlAvailable, s.Cluster = true, &swarm.ClusterInfo{}
			if !e.c.quorum() {
				s.Error = errNoLeader.Error()
			} else {
				ci := e.c.info()
				s.Cluster, s.Nodes = &ci, len(e.c.nodes)
				for _, m := range e.c.nodes {
					if m.role == swarm.NodeRoleManager {
						s.Managers++
					}
				}
			}
		}
	}
	return info, nil
}

func (e *Engine) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	defer e.end()
	if err := e.begin("SwarmInit"); err != nil {
		return "", err
	}
	if e.state != swarm.LocalNodeStateInactive {
		return "", errSwarmExists
	}
	c := &cluster{w: e.w, id: e.w.newID(), created: time.Now(), spec: req.Spec,
		addrPool: slices.Clone(req.DefaultAddrPool), subnetSize: req.SubnetSize, dataPathPort: req.DataPathPort}
	// Docker's defaults where the request leaves them.
	if len(c.addrPool) == 0 {
		c.addrPool, c.subnetSize = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 24
	}
	if c.dataPathPort == 0 {
		c.dataPathPort = 4789
	}
	c.makeIngress()
	c.spec.Name = "default"
	c.newTokens()
	if req.AutoLockManagers {
		c.spec.EncryptionConfig.AutoLockManagers = true
		c.unlockKey = "SWMKEY-1-" + e.w.newID()
	}
	c.version = c.bump()
	e.w.clusters = append(e.w.clusters, c)
	addr := hostOf(req.AdvertiseAddr)
	if addr == "" {
		addr = e.addr
	}
	n := c.add(e, swarm.NodeRoleManager, addr, req.Availability)
	c.leader = n.id
	c.settle()
	return n.id, nil
}

func (e *Engine) SwarmJoin(ctx context.Context, req swarm.JoinRequest) error {
	defer e.end()
	if err := e.begin("SwarmJoin"); err != nil {
		return err
	}
	if e.state != swarm.LocalNodeStateInactive {
		return errSwarmExists
	}
	var c *cluster
	for _, ra := range req.RemoteAddrs {
		for _, o := range e.w.engines {
			if n := o.entry(); n != nil && o.up && (o.addr == hostOf(ra) || n.addr == hostOf(ra)) {
				if _, err := o.control(); err == nil {
					c = o.c
				}
			}
		}
	}
	if c == nil {
		// dockerd keeps trying in the background: the node is pending.
		e.state = swarm.LocalNodeStatePending
		return errJoinTimeout
	}
	role := swarm.NodeRoleWorker
	switch req.JoinToken {
	case c.workerToken:
	case c.managerToken:
		role = swarm.NodeRoleManager
	default:
		return errBadToken
	}
	addr := hostOf(req.AdvertiseAddr)
	if addr == "" {
		addr = e.addr
	}
	if e.slow != nil {
		e.slow.c, e.slow.role, e.slow.addr, e.slow.avail = c, role, addr, req.Availability
		e.state = swarm.LocalNodeStatePending
		return errJoinTimeout
	}
	c.add(e, role, addr, req.Availability)
	c.settle()
	return nil
}

func (e *Engine) SwarmLeave(ctx context.Context, force bool) error {
	defer e.end()
	if err := e.begin(fmt.Sprintf("SwarmLeave force=%v", force)); err != nil {
		return err
	}
	switch e.state {
	case swarm.LocalNodeStateInactive:
		return errNoSwarm
	case swarm.LocalNodeStateLocked:
		if !force {
			return errLocked
		}
	case swarm.LocalNodeStateActive:
		if n := e.entry(); n != nil && n.role == swarm.NodeRoleManager && !force {
			return invalidParameter(errors.New(leaveManagerMessage(e.c)))
		}
	}
	e.detach()
	return nil
}

// leaveManagerMessage is dockerd's refusal to let a manager leave unforced.
func leaveManagerMessage(c *cluster) string {
	msg := "You are attempting to leave the swarm on a node that is participating as a manager. "
	all, reachable := c.managers()
	unreachable := all - reachable
	if reachable-2 <= unreachable { // removing it loses the quorum
		if reachable == 1 && unreachable == 0 {
			return msg + "Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
		}
		msg += fmt.Sprintf("Removing this node leaves %v managers out of %v. Without a Raft quorum your swarm will be inaccessible. ", reachable-1, all)
	}
	return msg + "The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
}

func (e *Engine) SwarmUnlock(ctx context.Context, req swarm.UnlockRequest) error {
	defer e.end()
	if err := e.begin("SwarmUnlock"); err != nil {
		return err
	}
	switch e.state {
	case swarm.LocalNodeStateInactive:
		return errNoSwarm
	case swarm.LocalNodeStateLocked:
	default:
		return errNotLocked
	}
	if req.UnlockKey == "" || req.UnlockKey != e.c.unlockKey {
		return errBadKey
	}
	e.state, e.errMsg = swarm.LocalNodeStatePending, ""
	e.c.settle()
	// As dockerd, the call returns once the node is ready: a manager is
	// not while its swarm has no quorum (the other managers locked too).
	for e.state == swarm.LocalNodeStatePending {
		e.end()
		select {
		case <-ctx.Done():
			e.w.mu.Lock()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		e.w.mu.Lock()
	}
	return nil
}

func (e *Engine) SwarmInspect(ctx context.Context) (swarm.Swarm, error) {
	defer e.end()
	c, err := e.manage("SwarmInspect")
	if err != nil {
		return swarm.Swarm{}, err
	}
	return swarm.Swarm{ClusterInfo: c.info(), JoinTokens: swarm.JoinTokens{Worker: c.workerToken, Manager: c.managerToken}}, nil
}

func (e *Engine) SwarmUpdate(ctx context.Context, flags client.SwarmUpdateOptions) error {
	version, spec := flags.Version, flags.Spec
	defer e.end()
	c, err := e.manage("SwarmUpdate")
	if err != nil {
		return err
	}
	if version.Index != c.version {
		return errSequence
	}
	was := c.spec.EncryptionConfig.AutoLockManagers
	c.spec = spec
	switch on := spec.EncryptionConfig.AutoLockManagers; {
	case !on:
		c.unlockKey = ""
	case !was || flags.RotateManagerUnlockKey:
		c.unlockKey = "SWMKEY-1-" + e.w.newID()
	}
	if flags.RotateWorkerToken || flags.RotateManagerToken {
		w, m := c.workerToken, c.managerToken
		c.newTokens()
		if !flags.RotateWorkerToken {
			c.workerToken = w
		}
		if !flags.RotateManagerToken {
			c.managerToken = m
		}
	}
	c.version = c.bump()
	return nil
}

func (e *Engine) SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error) {
	defer e.end()
	c, err := e.manage("SwarmGetUnlockKey")
	if err != nil {
		return swarm.UnlockKeyResponse{}, err
	}
	return swarm.UnlockKeyResponse{UnlockKey: c.unlockKey}, nil
}

func (e *Engine) Close() error {
	defer e.end()
	_ = e.begin("Close")
	return nil
}
