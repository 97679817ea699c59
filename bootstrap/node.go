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
	"strings"
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
}

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
	ClusterID      string `json:"clusterID,omitempty"`
	Manager        bool   `json:"manager"`
	Managers       int    `json:"managers,omitempty"`
	Nodes          int    `json:"nodes,omitempty"`
	Error          string `json:"error,omitempty"`
	DockerVersion  string `json:"dockerVersion,omitempty"`
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
	_, err := n.API.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: advertise})
	if err != nil {
		return fmt.Errorf("%s: swarm init (advertise %s): %w", n.Name, advertise, err)
	}
	return nil
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
	if err != nil {
		return fmt.Errorf("%s: swarm join %s: %s", n.Name, managerAddr, redact(err.Error()))
	}
	return nil
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

// EnsureNode sets the node's role, labels and availability through a
// manager; it returns what it changed.
func EnsureNode(ctx context.Context, mgr *Node, nodeID string, want NodeWant) ([]string, error) {
	node, _, err := mgr.API.NodeInspectWithRaw(ctx, nodeID)
	if err != nil {
		return nil, fmt.Errorf("%s: node inspect %s: %w", mgr.Name, nodeID, err)
	}
	spec := node.Spec
	var changed []string
	if want.Role != "" && string(spec.Role) != want.Role {
		spec.Role = swarm.NodeRole(want.Role)
		changed = append(changed, "role="+want.Role)
	}
	if want.Availability != "" && string(spec.Availability) != want.Availability {
		spec.Availability = swarm.NodeAvailability(want.Availability)
		changed = append(changed, "availability="+want.Availability)
	}
	for k, v := range want.Labels {
		if have, ok := spec.Labels[k]; !ok || have != v {
			if spec.Labels == nil {
				spec.Labels = map[string]string{}
			}
			spec.Labels[k] = v
			changed = append(changed, "label "+k+"="+v)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	if err := mgr.API.NodeUpdate(ctx, nodeID, node.Version, spec); err != nil {
		return nil, fmt.Errorf("%s: node update %s (%s): %w", mgr.Name, nodeID, strings.Join(changed, ", "), err)
	}
	return changed, nil
}

// WaitReady waits until the manager sees the node Ready (and, for a
// manager, reachable).
func WaitReady(ctx context.Context, mgr *Node, nodeID string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		node, _, err := mgr.API.NodeInspectWithRaw(ctx, nodeID)
		if err == nil && node.Status.State == swarm.NodeStateReady &&
			(node.Spec.Role != swarm.NodeRoleManager || node.ManagerStatus != nil && node.ManagerStatus.Reachability == swarm.ReachabilityReachable) {
			return nil
		}
		select {
		case <-ctx.Done():
			state := "unknown"
			if err == nil {
				state = string(node.Status.State)
			}
			return fmt.Errorf("node %s is not ready on %s (state %s): %w", nodeID, mgr.Name, state, ctx.Err())
		case <-time.After(300 * time.Millisecond):
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
