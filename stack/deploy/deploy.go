package deploy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/buildctx"
	"github.com/shoal-dev/shoal/stack"
)

// Options are what a deploy may do.
type Options struct {
	// Registry is the cluster's registry as every node knows it
	// (host:port; "" when the cluster has none): ${SHOAL_REGISTRY}.
	Registry string
	// Prune removes what left the stack's files (services, networks,
	// secrets, configs).
	Prune bool
	// Timeout bounds the wait for convergence (0: DefaultTimeout).
	Timeout time.Duration
	// DryRun stops after the plan: nothing is built or changed.
	DryRun bool
	// OverlayMTU is the swarm's overlay MTU (the cluster file's
	// overlay_mtu), for the overlay networks whose file sets none.
	OverlayMTU int
}

// Result is what a deploy did to one stack.
type Result struct {
	Stack  string       `json:"stack"`
	Plan   stack.Plan   `json:"plan"`
	Images []BuiltImage `json:"images,omitempty"`
	// Warnings are the compose options swarm ignores, as docker stack
	// deploy warns of them.
	Warnings []string `json:"warnings,omitempty"`
	// WouldBuild, in a dry run, are the services whose image a deploy
	// would build (its context or Dockerfile changed, or it was never
	// built on this engine).
	WouldBuild []string       `json:"wouldBuild,omitempty"`
	Services   []stack.Status `json:"services,omitempty"`
	Elapsed    time.Duration  `json:"elapsed"`
}

// BuiltImage is one image of the stack's builds.
type BuiltImage struct {
	Service string `json:"service"`
	Outcome
}

// Changed tells whether the deploy changed the swarm.
func (r *Result) Changed() bool {
	if !r.Plan.Empty() || len(r.WouldBuild) > 0 {
		return true
	}
	for _, b := range r.Images {
		if b.Built || b.Pushed {
			return true
		}
	}
	return false
}

// Deploy loads src, builds and pushes its images, makes the swarm's objects
// of the stack what its files say, and waits until its services converge.
func Deploy(ctx context.Context, api *client.Client, src stack.Source, opt Options) (*Result, error) {
	start := time.Now()
	res := &Result{Stack: src.Name}
	defer func() { res.Elapsed = time.Since(start) }()
	d, err := load(src, opt.Registry)
	if err != nil {
		return res, err
	}
	res.Warnings = d.Warnings
	if opt.DryRun {
		res.WouldBuild, err = wouldBuild(ctx, api, d)
	} else {
		res.Images, err = buildImages(ctx, api, d, opt.Registry)
	}
	if err != nil {
		return res, err
	}
	cur, err := Current(ctx, api, d.Name)
	if err != nil {
		return res, err
	}
	res.Plan = stack.Decide(d, cur, opt.Prune)
	if opt.DryRun {
		return res, nil
	}
	if err := Apply(ctx, api, d, cur, res.Plan, opt.OverlayMTU); err != nil {
		return res, err
	}
	res.Services, err = Converge(ctx, api, d, opt.Timeout)
	return res, err
}

// load reads the stack's files with ${SHOAL_REGISTRY} set.
func load(src stack.Source, registry string) (*stack.Desired, error) {
	env := map[string]string{}
	for k, v := range src.Env {
		env[k] = v
	}
	if registry != "" {
		env["SHOAL_REGISTRY"] = registry
	}
	src.Env = env
	return stack.Load(src, os.LookupEnv)
}

// buildImages builds and pushes each service's image and points the
// service at it by digest. An image that is not in the cluster's registry
// could not reach the other nodes: that is said before anything is built.
func buildImages(ctx context.Context, api *client.Client, d *stack.Desired, registry string) ([]BuiltImage, error) {
	for _, b := range d.Builds {
		if registry == "" || !strings.HasPrefix(b.Image, registry+"/") {
			return nil, fmt.Errorf("stack %s: service %s builds its image, so its image must be in the cluster's registry: image: ${SHOAL_REGISTRY}/NAME[:TAG], not %q", d.Name, b.Service, b.Image)
		}
	}
	var out []BuiltImage
	for _, b := range d.Builds {
		bc, err := buildctx.Read(b.Context, b.Dockerfile)
		if err != nil {
			return out, fmt.Errorf("stack %s: service %s: %w", d.Name, b.Service, err)
		}
		built, err := BuildAndPush(ctx, api, Image{Service: b.Service, Ref: b.Image, Context: bc})
		if err != nil {
			return out, fmt.Errorf("stack %s: %w", d.Name, err)
		}
		out = append(out, BuiltImage{Service: b.Service, Outcome: built})
		spec := d.Services[b.Service]
		if spec.TaskTemplate.ContainerSpec != nil {
			spec.TaskTemplate.ContainerSpec.Image = built.Pinned
			d.Services[b.Service] = spec
		}
	}
	return out, nil
}

// wouldBuild lists the services whose image the engine lacks from the same
// context.
func wouldBuild(ctx context.Context, api *client.Client, d *stack.Desired) ([]string, error) {
	var out []string
	for _, b := range d.Builds {
		bc, err := buildctx.Read(b.Context, b.Dockerfile)
		if err != nil {
			return out, fmt.Errorf("stack %s: service %s: %w", d.Name, b.Service, err)
		}
		have, err := api.ImageInspect(ctx, b.Image)
		if err != nil || !builtFrom(have.InspectResponse, bc.Digest) {
			out = append(out, b.Service)
		}
	}
	return out, nil
}

// Remove removes everything of stack name (a stack that left the cluster
// file), as 'docker stack rm' does.
func Remove(ctx context.Context, api *client.Client, name string) (*Result, error) {
	start := time.Now()
	res := &Result{Stack: name}
	defer func() { res.Elapsed = time.Since(start) }()
	cur, err := Current(ctx, api, name)
	if err != nil {
		return res, err
	}
	d := &stack.Desired{Name: name}
	res.Plan = stack.Decide(d, cur, true)
	return res, Apply(ctx, api, d, cur, res.Plan, 0)
}

// Summary is the deploy in a line: what changed, what runs.
func (r *Result) Summary() string {
	var parts []string
	count := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	built := 0
	for _, b := range r.Images {
		if b.Built {
			built++
		}
	}
	count(built, "image(s) built")
	count(len(r.Plan.CreateServices), "service(s) created")
	count(len(r.Plan.UpdateServices), "updated")
	count(len(r.Plan.RemoveServices), "removed")
	running, desired := 0, 0
	for _, s := range r.Services {
		running += s.Running
		desired += s.Desired
	}
	if len(r.Services) > 0 {
		parts = append(parts, fmt.Sprintf("%d service(s), %d/%d tasks running", len(r.Services), running, desired))
	}
	if len(parts) == 0 {
		return "nothing to change"
	}
	return strings.Join(parts, ", ")
}
