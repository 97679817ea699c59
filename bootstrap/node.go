// Package bootstrap makes Docker nodes one Swarm with a private registry. It
// talks to each node's Engine API through the node's SSH connection (typed
// answers, no parsing of CLI text), reads every node's state before it
// changes anything, and never shows a join token.
package bootstrap

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/shoal-dev/shoal/internal/sshrun"
)

// Runner is what bootstrap needs of a node's SSH connection.
type Runner interface {
	Host() string
	DialUnix(ctx context.Context, path string) (net.Conn, error)
	DialCommand(ctx context.Context, cmd string) (net.Conn, error)
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
	Sudo(cmd string) string
	RunSudo(ctx context.Context, cmd string) (sshrun.Result, error)
}

// Node is one Docker node reached over SSH.
type Node struct {
	Name     string
	Hostname string
	// Addr is the node's address on the cluster network (swarm advertise
	// address, registry address).
	Addr string
	R    Runner
	API  Engine
	// JoinWait bounds the wait for a join that goes on in the background
	// (0: DefaultJoinWait).
	JoinWait time.Duration
}

// DefaultJoinWait is how long a join may go on after dockerd's own limit
// (20 s) before shoal gives up waiting for it.
const DefaultJoinWait = 3 * time.Minute

const dockerSock = "/var/run/docker.sock"

// maxEngineConns bounds the open connections to one node's engine.
const maxEngineConns = 4

// Open returns a node whose Engine API goes through r.
func Open(name, hostname, addr string, r Runner) (*Node, error) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		conn, err := r.DialUnix(ctx, dockerSock)
		if err == nil {
			return conn, nil
		}
		// The login user may not be allowed on the socket (not in the docker
		// group, or joined it after this connection logged in): sudo can.
		return r.DialCommand(ctx, r.Sudo("docker system dial-stdio"))
	}
	// Each connection to the engine is a channel of the node's one SSH
	// connection, and through sudo a session: sshd allows 10 sessions a
	// connection (MaxSessions), which many hosts asking one manager at once
	// would pass. Requests beyond the cap wait for a free connection.
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: maxEngineConns, IdleConnTimeout: 30 * time.Second}}
	api, err := client.NewClientWithOpts(
		client.WithHTTPClient(hc),
		client.WithHost("unix://"+dockerSock),
		client.WithDialContext(dial),
		client.WithAPIVersionNegotiation(),
	)
	if err != nil {
		return nil, err
	}
	return &Node{Name: name, Hostname: hostname, Addr: addr, R: r, API: api}, nil
}

// Close releases the API client (the SSH connection stays with its owner).
func (n *Node) Close() error { return n.API.Close() }

// State is what a node says of its swarm.
type State struct {
	LocalNodeState string `json:"localNodeState"`
	NodeID         string `json:"nodeID,omitempty"`
	// NodeAddr is the address the engine itself advertises (for gossip and
	// VXLAN); a worker's entry in the swarm shows where its connection comes
	// from instead, which follows a new address while this does not.
	NodeAddr      string `json:"nodeAddr,omitempty"`
	ClusterID     string `json:"clusterID,omitempty"`
	Manager       bool   `json:"manager"`
	Managers      int    `json:"managers,omitempty"`
	Nodes         int    `json:"nodes,omitempty"`
	Error         string `json:"error,omitempty"`
	DockerVersion string `json:"dockerVersion,omitempty"`
}

// Active tells whether the node is in a swarm.
func (s State) Active() bool { return s.LocalNodeState == string(swarm.LocalNodeStateActive) }

// State reads the node's swarm state.
func (n *Node) State(ctx context.Context) (State, error) {
	info, err := n.API.Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("%s: docker info: %w", n.Name, err)
	}
	s := State{
		LocalNodeState: string(info.Swarm.LocalNodeState),
		NodeID:         info.Swarm.NodeID,
		NodeAddr:       info.Swarm.NodeAddr,
		Manager:        info.Swarm.ControlAvailable,
		Managers:       info.Swarm.Managers,
		Nodes:          info.Swarm.Nodes,
		Error:          info.Swarm.Error,
		DockerVersion:  info.ServerVersion,
	}
	if info.Swarm.Cluster != nil {
		s.ClusterID = info.Swarm.Cluster.ID
	}
	return s, nil
}

// Init makes the node the first manager of a new swarm.
func (n *Node) Init(ctx context.Context, advertise string) error {
	return n.InitWith(ctx, advertise, InitOptions{})
}

// InitOptions are settings a swarm takes when it is made and never after:
// the pools its overlay networks' subnets come from, and the VXLAN port.
// Zero values leave Docker's defaults (10.0.0.0/8 in /24s, 4789).
type InitOptions struct {
	DefaultAddrPool []string
	DataPathPort    uint32
	// OverlayMTU is the ingress network's MTU (0: Docker's).
	OverlayMTU int
}

// InitWith is Init with the settings of a new swarm.
func (n *Node) InitWith(ctx context.Context, advertise string, o InitOptions) error {
	req := swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: advertise, DataPathPort: o.DataPathPort}
	if len(o.DefaultAddrPool) > 0 {
		req.DefaultAddrPool = o.DefaultAddrPool
		req.SubnetSize = 24
	}
	if _, err := n.API.SwarmInit(ctx, req); err != nil {
		return fmt.Errorf("%s: swarm init (advertise %s): %w", n.Name, advertise, err)
	}
	return n.ingressWithMTU(ctx, o.OverlayMTU)
}

// InitDiffers lists how an existing swarm's init-only settings differ from
// what is asked (nothing when nothing is asked): they cannot change
// without a new swarm, which shoal never makes over one it found.
func InitDiffers(info swarm.ClusterInfo, o InitOptions) []string {
	var out []string
	if len(o.DefaultAddrPool) > 0 && !slices.Equal(info.DefaultAddrPool, o.DefaultAddrPool) {
		out = append(out, fmt.Sprintf("default_addr_pool is %v, not %v", info.DefaultAddrPool, o.DefaultAddrPool))
	}
	if o.DataPathPort != 0 && info.DataPathPort != o.DataPathPort {
		out = append(out, fmt.Sprintf("data_path_port is %d, not %d", info.DataPathPort, o.DataPathPort))
	}
	return out
}

// Tokens fetches the join tokens from a manager. They are secrets: the
// caller must add them to its redactor and never print them.
func Tokens(ctx context.Context, mgr *Node) (worker, manager string, err error) {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return "", "", fmt.Errorf("%s: swarm inspect: %w", mgr.Name, err)
	}
	return sw.JoinTokens.Worker, sw.JoinTokens.Manager, nil
}

// Join makes the node join the swarm of the manager at managerAddr.
func (n *Node) Join(ctx context.Context, advertise, managerAddr, token string, redact func(string) string) error {
	err := n.API.SwarmJoin(ctx, swarm.JoinRequest{
		ListenAddr:    "0.0.0.0:2377",
		AdvertiseAddr: advertise,
		RemoteAddrs:   []string{net.JoinHostPort(managerAddr, "2377")},
		JoinToken:     token,
	})
	if JoinGoesOn(err) {
		// In progress, not failed: a second join now would be refused (or
		// worse); the node says when it is in, or why not.
		err = n.waitJoined(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s: swarm join %s: %s", n.Name, managerAddr, redact(err.Error()))
	}
	return nil
}

// JoinGoesOn tells whether a join's error is dockerd's answer that the join
// outlived its own limit and continues in the background (a slow or busy
// host): the join is in progress.
func JoinGoesOn(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Timeout was reached before node joined")
}

// JoinProgress reads the state of a node whose join goes on: done when it
// is in the swarm, an error with the node's own when the join ended
// otherwise, neither while it goes on (pending).
func JoinProgress(s State) (done bool, err error) {
	switch s.LocalNodeState {
	case StateActive:
		return true, nil
	case StatePending:
		return false, nil
	}
	why := s.Error
	if why == "" {
		why = "no error given (see 'docker info' on it)"
	}
	return false, fmt.Errorf("the join, gone on in the background after dockerd's time limit, ended in state %s: %s", s.LocalNodeState, why)
}

// waitJoined waits, bounded by JoinWait, until a join that goes on in the
// background ends.
func (n *Node) waitJoined(ctx context.Context) error {
	wait := n.JoinWait
	if wait <= 0 {
		wait = DefaultJoinWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := "not read"
	for {
		s, err := n.State(wctx)
		if err == nil {
			last = s.LocalNodeState
			if done, err := JoinProgress(s); done || err != nil {
				return err
			}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the join goes on in the background after dockerd's time limit, and the node is not in the swarm %s later (state %s); see 'docker info' on it, then run again", wait, last)
		case <-time.After(pollInterval):
		}
	}
}

// Leave takes the node out of its swarm.
func (n *Node) Leave(ctx context.Context, force bool) error {
	if err := n.API.SwarmLeave(ctx, force); err != nil {
		return fmt.Errorf("%s: swarm leave: %w", n.Name, err)
	}
	return nil
}

// NodeWant is the role, labels and availability a node should have.
type NodeWant struct {
	Role         string // manager or worker
	Labels       map[string]string
	Availability string // active, pause, drain; "" keeps what is there
}

// NodeChanges applies want to a node's spec: the spec to send and what
// changes ("role=manager", "label zone=a"); nothing when it is right.
func NodeChanges(have swarm.NodeSpec, want NodeWant) (swarm.NodeSpec, []string) {
	spec := have
	var changed []string
	if want.Role != "" && string(spec.Role) != want.Role {
		spec.Role = swarm.NodeRole(want.Role)
		changed = append(changed, "role="+want.Role)
	}
	if want.Availability != "" && string(spec.Availability) != want.Availability {
		spec.Availability = swarm.NodeAvailability(want.Availability)
		changed = append(changed, "availability="+want.Availability)
	}
	keys := make([]string, 0, len(want.Labels))
	for k := range want.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var labels map[string]string // a copy: a listed node's map is not written to
	for _, k := range keys {
		v := want.Labels[k]
		if cur, ok := have.Labels[k]; ok && cur == v {
			continue
		}
		if labels == nil {
			labels = make(map[string]string, len(have.Labels)+len(want.Labels))
			for lk, lv := range have.Labels {
				labels[lk] = lv
			}
		}
		labels[k] = v
		changed = append(changed, "label "+k+"="+v)
	}
	if labels != nil {
		spec.Labels = labels
	}
	return spec, changed
}

// EnsureNode sets the node's role, labels and availability through a
// manager; it returns what it changed.
func EnsureNode(ctx context.Context, mgr *Node, nodeID string, want NodeWant) ([]string, error) {
	node, _, err := mgr.API.NodeInspectWithRaw(ctx, nodeID)
	if err != nil {
		return nil, fmt.Errorf("%s: node inspect %s: %w", mgr.Name, nodeID, err)
	}
	return updateNode(ctx, mgr, node, want)
}

// updateNode sends what NodeChanges says of node (as listed or inspected,
// with its version); nothing when it is right.
func updateNode(ctx context.Context, mgr *Node, node swarm.Node, want NodeWant) ([]string, error) {
	spec, changed := NodeChanges(node.Spec, want)
	if len(changed) == 0 {
		return nil, nil
	}
	if err := mgr.API.NodeUpdate(ctx, node.ID, node.Version, spec); err != nil {
		return nil, fmt.Errorf("%s: node update %s (%s): %w", mgr.Name, node.ID, strings.Join(changed, ", "), err)
	}
	return changed, nil
}

// EnsureNodes is EnsureNode for many nodes from one node list: only the
// nodes that differ cost a call. A node updated meanwhile (its version
// moved on) is inspected and tried again.
func EnsureNodes(ctx context.Context, mgr *Node, want map[string]NodeWant, parallel int) (map[string][]string, error) {
	listed, err := mgr.API.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	byID := nodesByID(listed)
	var todo []string
	for id, w := range want {
		n, ok := byID[id]
		if _, changes := NodeChanges(n.Spec, w); !ok || len(changes) > 0 {
			todo = append(todo, id)
		}
	}
	sort.Strings(todo)
	out := map[string][]string{}
	var mu sync.Mutex
	err = forEach(ctx, parallel, todo, func(ctx context.Context, id string) error {
		n, ok := byID[id]
		var got []string
		var err error
		if ok {
			got, err = updateNode(ctx, mgr, n, want[id])
		}
		if !ok || err != nil && strings.Contains(err.Error(), "update out of sequence") {
			got, err = EnsureNode(ctx, mgr, id, want[id])
		}
		if err != nil {
			return err
		}
		mu.Lock()
		out[id] = got
		mu.Unlock()
		return nil
	})
	return out, err
}

// nodesByID indexes a node list.
func nodesByID(listed []swarm.Node) map[string]swarm.Node {
	byID := make(map[string]swarm.Node, len(listed))
	for _, n := range listed {
		byID[n.ID] = n
	}
	return byID
}

// nodeReady: Ready and, for a manager, reachable.
func nodeReady(n swarm.Node) bool {
	return n.Status.State == swarm.NodeStateReady &&
		(n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable)
}

// NotReady lists the ids that the node list does not show ready, with
// their state (and name, from names), sorted.
func NotReady(listed []swarm.Node, ids []string, names map[string]string) []string {
	byID := nodesByID(listed)
	var out []string
	for _, id := range ids {
		n, ok := byID[id]
		who := id
		if names[id] != "" {
			who = names[id] + " " + Short(id)
		}
		switch {
		case !ok:
			out = append(out, who+" (not in the swarm)")
		case n.Status.State != swarm.NodeStateReady:
			out = append(out, fmt.Sprintf("%s (%s)", who, n.Status.State))
		case !nodeReady(n):
			out = append(out, who+" (a manager not reachable)")
		}
	}
	sort.Strings(out)
	return out
}

// WaitReady waits until the manager sees the node Ready (and, for a
// manager, reachable).
func WaitReady(ctx context.Context, mgr *Node, nodeID string, timeout time.Duration) error {
	return WaitAllReady(ctx, mgr, []string{nodeID}, nil, timeout)
}

// WaitAllReady waits until the manager's node list shows every one of
// ids Ready (a manager also reachable): one list a poll, whatever the
// number of nodes. names (id to name, may be nil) are for the error.
func WaitAllReady(ctx context.Context, mgr *Node, ids []string, names map[string]string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		listed, err := mgr.API.NodeList(ctx, swarm.NodeListOptions{})
		var left []string
		if err == nil {
			if left = NotReady(listed, ids, names); len(left) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			why := strings.Join(left, ", ")
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("nodes not ready on %s: %s: %w", mgr.Name, why, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RemoveNode deletes a node that left from the manager's node list.
func RemoveNode(ctx context.Context, mgr *Node, nodeID string) error {
	err := mgr.API.NodeRemove(ctx, nodeID, swarm.NodeRemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("%s: node rm %s: %w", mgr.Name, nodeID, err)
	}
	return nil
}

// ArchiveTags lists the image tags a `docker save` archive holds.
func ArchiveTags(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// docker load takes gzip-compressed archives too.
	var r io.Reader = bufio.NewReader(f)
	if magic, _ := r.(*bufio.Reader).Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no manifest.json: not a 'docker save' archive", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var manifest []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
			return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
		}
		var tags []string
		for _, m := range manifest {
			tags = append(tags, m.RepoTags...)
		}
		return tags, nil
	}
}

// LoadImages loads a `docker save` archive onto the node unless the node
// already has every image in it. It says whether it loaded.
func LoadImages(ctx context.Context, n *Node, path string) (bool, error) {
	tags, err := ArchiveTags(path)
	if err != nil {
		return false, err
	}
	return LoadImagesTagged(ctx, n, path, tags)
}

// LoadImagesTagged is LoadImages with the archive's tags read already
// (ArchiveTags reads the whole archive: once per run is enough).
func LoadImagesTagged(ctx context.Context, n *Node, path string, tags []string) (bool, error) {
	missing := len(tags) == 0
	for _, t := range tags {
		if _, err := n.API.ImageInspect(ctx, t); err != nil {
			missing = true
			break
		}
	}
	if !missing {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	resp, err := n.API.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return false, fmt.Errorf("%s: docker load %s: %w", n.Name, path, err)
	}
	defer resp.Body.Close()
	// The answer is a JSON stream; an error inside it is the load's error.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error       string
			ErrorDetail struct{ Message string }
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, fmt.Errorf("%s: docker load %s: %w", n.Name, path, err)
		}
		if msg.Error != "" {
			return true, fmt.Errorf("%s: docker load %s: %s", n.Name, path, msg.Error)
		}
	}
}

// SameSwarm tells whether node state n is in the swarm of manager mgr
// (whose state is mstate). A worker does not know its cluster's ID: then the
// manager must know the node.
func SameSwarm(ctx context.Context, mgr *Node, mstate, n State) bool {
	if !n.Active() {
		return false
	}
	if n.ClusterID != "" {
		return n.ClusterID == mstate.ClusterID
	}
	if n.NodeID == "" {
		return false
	}
	_, _, err := mgr.API.NodeInspectWithRaw(ctx, n.NodeID)
	return err == nil
}

// EnsureAutolock turns the managers' autolock on or off through a manager;
// when it is on, it returns the unlock key (a secret: store it, never show
// it). It says whether it changed the swarm.
func EnsureAutolock(ctx context.Context, mgr *Node, on bool) (changed bool, key string, err error) {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return false, "", fmt.Errorf("%s: swarm inspect: %w", mgr.Name, err)
	}
	if sw.Spec.EncryptionConfig.AutoLockManagers != on {
		spec := sw.Spec
		spec.EncryptionConfig.AutoLockManagers = on
		if err := mgr.API.SwarmUpdate(ctx, sw.Version, spec, swarm.UpdateFlags{}); err != nil {
			return false, "", fmt.Errorf("%s: swarm update (autolock=%v): %w", mgr.Name, on, err)
		}
		changed = true
	}
	if !on {
		return changed, "", nil
	}
	k, err := mgr.API.SwarmGetUnlockKey(ctx)
	if err != nil {
		return changed, "", fmt.Errorf("%s: swarm unlock key: %w", mgr.Name, err)
	}
	return changed, k.UnlockKey, nil
}
