package bootstrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/wait"
)

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
		pools, err := parsePools(o.DefaultAddrPool)
		if err != nil {
			return fmt.Errorf("%s: swarm init: %w", n.Name, err)
		}
		req.DefaultAddrPool, req.SubnetSize = pools, 24
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
	if len(o.DefaultAddrPool) > 0 && !slices.Equal(PoolStrings(info.DefaultAddrPool), o.DefaultAddrPool) {
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
	why = cmp.Or(why, "no error given (see 'docker info' on it)")
	return false, fmt.Errorf("the join, gone on in the background after dockerd's time limit, ended in state %s: %s", s.LocalNodeState, why)
}

// waitJoined waits, bounded by JoinWait, until a join that goes on in the
// background ends.
func (n *Node) waitJoined(ctx context.Context) error {
	bound := n.JoinWait
	if bound <= 0 {
		bound = DefaultJoinWait
	}
	last := "not read"
	err := wait.Poll(ctx, pollInterval, bound, func(ctx context.Context) (bool, error) {
		s, err := n.State(ctx)
		if err != nil {
			return false, nil
		}
		last = s.LocalNodeState
		return JoinProgress(s)
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("the join goes on in the background after dockerd's time limit, and the node is not in the swarm %s later (state %s); see 'docker info' on it, then run again", bound, last)
	}
	return err
}

// Leave takes the node out of its swarm.
func (n *Node) Leave(ctx context.Context, force bool) error {
	if err := n.API.SwarmLeave(ctx, force); err != nil {
		return fmt.Errorf("%s: swarm leave: %w", n.Name, err)
	}
	return nil
}

// initSwarm makes a new swarm with t its first manager, saying so.
func (r *Reconciler) initSwarm(ctx context.Context, t *Target, o InitOptions) error {
	r.event(t.Want.Name, "swarm-init", ui.Started, t.Advertise)
	if err := t.Node.InitWith(ctx, t.Advertise, o); err != nil {
		r.event(t.Want.Name, "swarm-init", ui.Failed, "")
		return err
	}
	r.event(t.Want.Name, "swarm-init", ui.Changed, t.Advertise)
	return nil
}

// joinSwarm makes t join the swarm of the manager at managerAddr with the
// token of its role, saying so (the token redacted from any error).
func (r *Reconciler) joinSwarm(ctx context.Context, t *Target, managerAddr, token string) error {
	r.event(t.Want.Name, "swarm-join", ui.Started, string(t.Want.Role))
	if err := t.Node.Join(ctx, t.Advertise, managerAddr, token, r.Redactor.Redact); err != nil {
		r.event(t.Want.Name, "swarm-join", ui.Failed, "")
		return err
	}
	r.event(t.Want.Name, "swarm-join", ui.Changed, string(t.Want.Role))
	return nil
}

// PoolStrings is a swarm's address pools as written in a cluster file.
func PoolStrings(pools []netip.Prefix) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		out[i] = p.String()
	}
	return out
}

// parsePools reads address pools (validated already: an error here is a bug).
func parsePools(pools []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, len(pools))
	for i, s := range pools {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("default_addr_pool %q: %w", s, err)
		}
		out[i] = p
	}
	return out, nil
}
