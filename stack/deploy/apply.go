package deploy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/wait"
	"github.com/shoal-dev/shoal/stack"
)

// LabelNamespace is the label docker stack puts on everything of a stack:
// what shoal makes carries it too, so `docker stack ls/ps/services/rm` see
// shoal's stacks, and a stack deployed by hand is taken over.
const LabelNamespace = "com.docker.stack.namespace"

// Current reads what the swarm has of stack name: the objects with its
// label.
func Current(ctx context.Context, api *client.Client, name string) (stack.Current, error) {
	var cur stack.Current
	f := make(client.Filters).Add("label", LabelNamespace+"="+name)
	services, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return cur, fmt.Errorf("stack %s: list services: %w", name, err)
	}
	// Every network, not only the stack's: a service's spec keeps network
	// IDs, external networks' too, and Decide maps them back to names.
	networks, err := api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return cur, fmt.Errorf("stack %s: list networks: %w", name, err)
	}
	secrets, err := api.SecretList(ctx, client.SecretListOptions{Filters: f})
	if err != nil {
		return cur, fmt.Errorf("stack %s: list secrets: %w", name, err)
	}
	configs, err := api.ConfigList(ctx, client.ConfigListOptions{Filters: f})
	if err != nil {
		return cur, fmt.Errorf("stack %s: list configs: %w", name, err)
	}
	cur.Services, cur.Networks, cur.Secrets, cur.Configs = services.Items, networks.Items, secrets.Items, configs.Items
	return cur, nil
}

// Apply does what plan says, in the order that never leaves a service
// without what it uses: networks, secrets and configs first, then the
// services, then what no service uses any more.
// overlayMTU is the MTU of the overlay networks it makes whose file sets
// none (0: Docker's).
func Apply(ctx context.Context, api *client.Client, d *stack.Desired, cur stack.Current, plan stack.Plan, overlayMTU int) error {
	a := &applier{api: api, d: d, cur: cur, plan: plan, secretIDs: map[string]string{}, configIDs: map[string]string{}, overlayMTU: overlayMTU}
	for _, s := range cur.Secrets {
		a.secretIDs[s.Spec.Name] = s.ID
	}
	for _, c := range cur.Configs {
		a.configIDs[c.Spec.Name] = c.ID
	}
	steps := []func(context.Context) error{
		a.createNetworks, a.createSecrets, a.createConfigs, a.createServices, a.updateServices,
		a.removeServices, a.removeSecrets, a.removeConfigs, a.removeNetworks,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return fmt.Errorf("stack %s: %w", d.Name, err)
		}
	}
	return nil
}

// applier is one Apply: the IDs of the secrets and configs the services
// refer to, found or made.
type applier struct {
	api                  *client.Client
	d                    *stack.Desired
	cur                  stack.Current
	plan                 stack.Plan
	secretIDs, configIDs map[string]string
	overlayMTU           int
}

// spec is a service's desired spec with its references' IDs; an update's
// keeps what swarm pinned and the force-update counter (stack.ForUpdate).
func (a *applier) spec(name string) (swarm.ServiceSpec, error) {
	spec := a.d.Services[name]
	if svc, ok := serviceNamed(a.cur.Services, name); ok {
		spec = stack.ForUpdate(spec, svc.Spec)
	}
	err := stack.ResolveIDs(&spec, a.secretIDs, a.configIDs)
	return spec, err
}

// MTUOption is the driver option that sets an overlay network's MTU.
const MTUOption = "com.docker.network.driver.mtu"

// WithMTU is a network's create options with the swarm's overlay MTU when
// the stack's file does not set one: an overlay network takes Docker's 1450
// otherwise, too big where the hosts' link is small (the reason the
// cluster file sets overlay_mtu). mtu 0 changes nothing.
func WithMTU(o client.NetworkCreateOptions, mtu int) client.NetworkCreateOptions {
	driver := o.Driver
	if mtu == 0 || (driver != "" && driver != "overlay") || o.Options[MTUOption] != "" {
		return o
	}
	opts := make(map[string]string, len(o.Options)+1)
	for k, v := range o.Options {
		opts[k] = v
	}
	opts[MTUOption] = strconv.Itoa(mtu)
	o.Options = opts
	return o
}

func (a *applier) createNetworks(ctx context.Context) error {
	for _, name := range a.plan.CreateNetworks {
		if _, err := a.api.NetworkCreate(ctx, name, WithMTU(a.d.Networks[name], a.overlayMTU)); err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
	}
	return nil
}

func (a *applier) createSecrets(ctx context.Context) error {
	for _, s := range a.d.Secrets {
		if !slices.Contains(a.plan.CreateSecrets, s.Name) {
			continue
		}
		r, err := a.api.SecretCreate(ctx, client.SecretCreateOptions{Spec: s})
		if err != nil {
			return fmt.Errorf("create secret %s: %w", s.Name, err) // never the value
		}
		a.secretIDs[s.Name] = r.ID
	}
	return nil
}

func (a *applier) createConfigs(ctx context.Context) error {
	for _, c := range a.d.Configs {
		if !slices.Contains(a.plan.CreateConfigs, c.Name) {
			continue
		}
		r, err := a.api.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: c})
		if err != nil {
			return fmt.Errorf("create config %s: %w", c.Name, err)
		}
		a.configIDs[c.Name] = r.ID
	}
	return nil
}

func (a *applier) createServices(ctx context.Context) error {
	for _, name := range a.plan.CreateServices {
		spec, err := a.spec(name)
		if err != nil {
			return err
		}
		if _, err := a.api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec}); err != nil {
			return fmt.Errorf("create service %s: %w", name, err)
		}
	}
	return nil
}

func (a *applier) updateServices(ctx context.Context) error {
	for _, ch := range a.plan.UpdateServices {
		svc, ok := serviceNamed(a.cur.Services, ch.Name)
		if !ok {
			return fmt.Errorf("update service %s: it is gone", ch.Name)
		}
		spec, err := a.spec(ch.Name)
		if err != nil {
			return err
		}
		if _, err := a.api.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: spec}); err != nil {
			return fmt.Errorf("update service %s (%s): %w", ch.Name, strings.Join(ch.Fields, ", "), err)
		}
	}
	return nil
}

func (a *applier) removeServices(ctx context.Context) error {
	for _, name := range a.plan.RemoveServices {
		if svc, ok := serviceNamed(a.cur.Services, name); ok {
			if _, err := a.api.ServiceRemove(ctx, svc.ID, client.ServiceRemoveOptions{}); err != nil {
				return fmt.Errorf("remove service %s: %w", name, err)
			}
		}
	}
	return nil
}

func (a *applier) removeSecrets(ctx context.Context) error {
	for _, s := range a.cur.Secrets {
		if slices.Contains(a.plan.RemoveSecrets, s.Spec.Name) {
			if _, err := a.api.SecretRemove(ctx, s.ID, client.SecretRemoveOptions{}); err != nil {
				return fmt.Errorf("remove secret %s: %w", s.Spec.Name, err)
			}
		}
	}
	return nil
}

func (a *applier) removeConfigs(ctx context.Context) error {
	for _, c := range a.cur.Configs {
		if slices.Contains(a.plan.RemoveConfigs, c.Spec.Name) {
			if _, err := a.api.ConfigRemove(ctx, c.ID, client.ConfigRemoveOptions{}); err != nil {
				return fmt.Errorf("remove config %s: %w", c.Spec.Name, err)
			}
		}
	}
	return nil
}

// networkGone bounds the wait for a removed service's tasks to leave a
// network it used: until then swarm refuses to remove the network.
const networkGone = time.Minute

func (a *applier) removeNetworks(ctx context.Context) error {
	for _, n := range a.cur.Networks {
		if !slices.Contains(a.plan.RemoveNetworks, n.Name) {
			continue
		}
		var last error
		err := wait.Poll(ctx, time.Second, networkGone, func(ctx context.Context) (bool, error) {
			_, last = a.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			return last == nil || cerrdefs.IsNotFound(last), nil
		})
		if err != nil {
			return fmt.Errorf("remove network %s: %v (after %s)", n.Name, last, networkGone)
		}
	}
	return nil
}

func serviceNamed(services []swarm.Service, name string) (swarm.Service, bool) {
	for _, s := range services {
		if s.Spec.Name == name {
			return s, true
		}
	}
	return swarm.Service{}, false
}
