// Package bootstrap makes Docker nodes one Swarm with a private registry. It
// talks to each node's Engine API through the node's SSH connection (typed
// answers, no parsing of CLI text), reads every node's state before it
// changes anything, and never shows a join token.
package bootstrap

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
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
	api, err := newAPI(dial)
	if err != nil {
		return nil, err
	}
	return &Node{Name: name, Hostname: hostname, Addr: addr, R: r, API: apiEngine{api}}, nil
}

// newAPI is the Engine API client for a node's socket, reached through dial.
// The client takes the engine's API version on its first request (Debian's
// docker 20.10 speaks 1.41, CentOS 7's docker 1.13 speaks 1.26).
func newAPI(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*engineClient, error) {
	// Each connection to the engine is a channel of the node's one SSH
	// connection, and through sudo a session: sshd allows 10 sessions a
	// connection (MaxSessions), which many hosts asking one manager at once
	// would pass. Requests beyond the cap wait for a free connection.
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: maxEngineConns, IdleConnTimeout: 30 * time.Second}}
	return newEngineClient(
		client.WithHTTPClient(hc),
		client.WithHost("unix://"+dockerSock),
		client.WithDialContext(dial),
		// The client takes https when its transport has a TLS config,
		// and cloning the transport (WithHTTPClient) gives it HTTP/2's:
		// the socket speaks plain HTTP.
		client.WithScheme("http"),
	)
}

// Client is the node's full Engine API client, for work beyond Engine's
// (stacks: services, secrets, configs, builds); an error for a node whose
// engine is not one (the in-memory swarm of tests).
func (n *Node) Client(ctx context.Context) (*client.Client, error) {
	a, ok := n.API.(apiEngine)
	if !ok {
		return nil, fmt.Errorf("%s: the engine is not reached through the Engine API client", n.Name)
	}
	return a.client(ctx), nil
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
		if err := mgr.API.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Version, Spec: spec}); err != nil {
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
