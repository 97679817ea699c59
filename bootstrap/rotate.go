package bootstrap

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/wait"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/ui"
)

// NodeTrust is the root CA a node trusts now (its TLS info).
type NodeTrust struct {
	Hostname  string
	TrustRoot string
}

// NotRotated lists the nodes that do not trust root yet (by hostname).
func NotRotated(nodes []NodeTrust, root string) []string {
	var out []string
	for _, n := range nodes {
		if strings.TrimSpace(n.TrustRoot) != strings.TrimSpace(root) {
			out = append(out, n.Hostname)
		}
	}
	sort.Strings(out)
	return out
}

// Rotate makes new join tokens (the old ones stop working) and, with ca,
// a new swarm root CA (docker swarm ca --rotate): it waits until the
// rotation is done and every node has a certificate of the new root. The
// tokens are never shown.
func (r *Reconciler) Rotate(ctx context.Context, mgr *Node, ca bool, timeout time.Duration) error {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("%s: swarm inspect: %w", mgr.Name, err)
	}
	r.Redactor.Add(sw.JoinTokens.Worker)
	r.Redactor.Add(sw.JoinTokens.Manager)
	oldRoot := sw.ClusterInfo.TLSInfo.TrustRoot
	spec := sw.Spec
	if ca {
		spec.CAConfig.ForceRotate++
	}
	update := client.SwarmUpdateOptions{Version: sw.Version, Spec: spec, RotateWorkerToken: true, RotateManagerToken: true}
	if err := mgr.API.SwarmUpdate(ctx, update); err != nil {
		return fmt.Errorf("%s: swarm update (rotate): %s", mgr.Name, r.Redactor.Redact(err.Error()))
	}
	r.event(mgr.Name, "rotate-tokens", ui.Changed, "new worker and manager join tokens")
	if !ca {
		return nil
	}
	r.event(mgr.Name, "rotate-ca", ui.Started, "")
	var pending []string
	err = wait.Poll(ctx, time.Second, timeout, func(ctx context.Context) (bool, error) {
		p, done := rotated(ctx, mgr, oldRoot)
		if p != nil {
			pending = p
		}
		return done, nil
	})
	if err != nil {
		r.event(mgr.Name, "rotate-ca", ui.Failed, "")
		if len(pending) > 0 {
			return fmt.Errorf("the swarm's root CA rotation did not finish within %s: %s do not have the new certificate (are they up?)", timeout, strings.Join(pending, ", "))
		}
		return fmt.Errorf("the swarm's root CA rotation did not finish within %s", timeout)
	}
	r.event(mgr.Name, "rotate-ca", ui.Changed, "every node has a certificate of the new root CA")
	return nil
}

// rotated tells whether the swarm's root CA is no longer oldRoot, its
// rotation done and every node with a certificate of the new root; pending
// are the nodes without one (as last read; unchanged when not read).
func rotated(ctx context.Context, mgr *Node, oldRoot string) (pending []string, done bool) {
	sw, err := mgr.API.SwarmInspect(ctx)
	root := sw.ClusterInfo.TLSInfo.TrustRoot
	if err != nil || root == oldRoot || sw.ClusterInfo.RootRotationInProgress {
		return nil, false
	}
	nodes, err := mgr.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, false
	}
	var trust []NodeTrust
	for _, n := range nodes {
		trust = append(trust, NodeTrust{Hostname: n.Description.Hostname, TrustRoot: n.Description.TLSInfo.TrustRoot})
	}
	pending = NotRotated(trust, root)
	return pending, len(pending) == 0
}
