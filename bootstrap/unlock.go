package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-dev/shoal/internal/ui"
)

func (r *Reconciler) unlock(ctx context.Context, n *Node, key string) error {
	r.event(n.Name, "swarm-unlock", ui.Started, "")
	// The call returns when the manager is ready, which needs a quorum of
	// managers unlocked: bounded.
	uctx, cancel := context.WithTimeout(ctx, r.readyTimeout())
	defer cancel()
	if err := n.API.SwarmUnlock(uctx, swarm.UnlockRequest{UnlockKey: key}); err != nil {
		r.event(n.Name, "swarm-unlock", ui.Failed, "")
		if uctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: swarm unlock: not ready within %s: a majority of the managers must be unlocked", n.Name, r.readyTimeout())
		}
		return fmt.Errorf("%s: swarm unlock: %s", n.Name, r.Redactor.Redact(err.Error()))
	}
	if err := waitState(ctx, n, StateActive, r.readyTimeout()); err != nil {
		return err
	}
	r.event(n.Name, "swarm-unlock", ui.Changed, "")
	return nil
}

// UnlockLocked unlocks every locked manager among nodes with key and says
// which it unlocked. It never does anything else to a node.
func UnlockLocked(ctx context.Context, r *Reconciler, nodes []*Node, key string) ([]string, error) {
	obs := Observe(ctx, r.Parallel, nodes)
	var done []string
	var errs []error
	var locked []*Node
	for _, n := range nodes {
		s, ok := obs.States[n.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the Docker engine does not answer: %s", n.Name, obs.Unreachable[n.Name]))
			continue
		}
		if s.LocalNodeState != StateLocked {
			r.event(n.Name, "swarm-unlock", ui.Unchanged, s.LocalNodeState)
			continue
		}
		locked = append(locked, n)
	}
	// All at once (see Reconcile).
	var mu sync.Mutex
	unlocked := map[*Node]bool{}
	errs = append(errs, forEach(ctx, len(locked), locked, func(ctx context.Context, n *Node) error {
		if err := r.unlock(ctx, n, key); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		unlocked[n] = true
		return nil
	}))
	for _, n := range locked {
		if unlocked[n] {
			done = append(done, n.Name)
		}
	}
	return done, errors.Join(errs...)
}
