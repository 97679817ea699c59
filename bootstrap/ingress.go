package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/wait"
)

// MTUOption is the overlay driver's option for its networks' MTU.
const MTUOption = "com.docker.network.driver.mtu"

// ingressWithMTU makes the ingress network of a swarm just made again, with
// the MTU asked for: Docker makes it at init with its default (1450, for a
// 1500 link), and a network's options never change after. Only for a new
// swarm, before any service publishes a port through it; the new network
// keeps the old one's subnet (from default_addr_pool when one was given).
func (n *Node) ingressWithMTU(ctx context.Context, mtu int) error {
	if mtu == 0 {
		return nil
	}
	want := strconv.Itoa(mtu)
	ing, err := n.API.NetworkInspect(ctx, "ingress", client.NetworkInspectOptions{})
	if err != nil {
		return fmt.Errorf("%s: network inspect ingress: %w", n.Name, err)
	}
	if ing.Options[MTUOption] == want {
		return nil
	}
	if err := n.API.NetworkRemove(ctx, ing.ID); err != nil {
		return fmt.Errorf("%s: network rm ingress (to make it with mtu %d): %w", n.Name, mtu, err)
	}
	opts := client.NetworkCreateOptions{Driver: "overlay", Scope: "swarm", Ingress: true, IPAM: &ing.IPAM, Labels: ing.Labels,
		Options: map[string]string{MTUOption: want}}
	if err := n.createIngress(ctx, opts); err != nil {
		return fmt.Errorf("%s: network create ingress (mtu %d): %w", n.Name, mtu, err)
	}
	return nil
}

// createIngress makes the ingress network again. The swarm removes a
// network in the background: the name is free within seconds. A wait
// that ends says what held the name.
func (n *Node) createIngress(ctx context.Context, opts client.NetworkCreateOptions) error {
	var last error // the name still taken
	err := wait.Poll(ctx, 500*time.Millisecond, 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := n.API.NetworkCreate(ctx, "ingress", opts)
		if err != nil && nameTaken(err) {
			last = err
			return false, nil
		}
		return true, err
	})
	if err != nil && last != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("%w (%v)", last, err)
	}
	return err
}

// nameTaken: the network's name is still held (the old one going).
func nameTaken(err error) bool {
	return cerrdefs.IsConflict(err) || cerrdefs.IsPermissionDenied(err) || strings.Contains(err.Error(), "already")
}
