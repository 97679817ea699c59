// Package deploy puts stacks on a swarm through a manager's Engine API:
// images built and pushed to the cluster's registry, the objects a stack's
// plan names made, changed or removed, and the wait until every service runs
// what it was asked to, with the reason when a task fails. What to do is
// decided by the stack package; this package acts.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/buildctx"
)

// LabelContext is the label a built image carries with its context's
// digest: an image that has it with the same digest is not built again.
const LabelContext = "io.shoal.build-context"

// Image is one image to build from a context and push.
type Image struct {
	Service string // the service that asks for it, for messages
	Ref     string // where it goes: REGISTRY/NAME:TAG
	Context *buildctx.Context
	Args    map[string]*string
	Target  string
}

// Outcome is what became of an Image: the reference by digest that every
// node pulls, and whether it was built or pushed in this run.
type Outcome struct {
	Pinned string
	Built  bool
	Pushed bool
}

// BuildAndPush builds img on api's engine unless that engine already has
// it from the same context, pushes it unless the registry already has
// those bytes, and returns it by digest.
func BuildAndPush(ctx context.Context, api *client.Client, img Image) (Outcome, error) {
	var res Outcome
	// One inspect tells both whether to build and what the registry
	// should already have.
	have, err := api.ImageInspect(ctx, img.Ref)
	if err != nil || !builtFrom(have.InspectResponse, img.Context.Digest) {
		if err := build1(ctx, api, img); err != nil {
			return res, err
		}
		res.Built = true
	}
	local := ""
	if !res.Built {
		local = digestIn(have.InspectResponse, img.Ref)
	}
	if local == "" || !inRegistry(ctx, api, img.Ref, local) {
		res.Pushed = true
		if local, err = pushed(ctx, api, img); err != nil {
			return res, err
		}
	}
	if local == "" {
		return res, fmt.Errorf("service %s: image %s has no digest after its push", img.Service, img.Ref)
	}
	// By tag and digest, as docker stack deploy pins: readable, and the
	// digest is what the nodes pull.
	_, digest, _ := strings.Cut(local, "@")
	res.Pinned = img.Ref + "@" + digest
	return res, nil
}

// builtFrom tells whether an image was built from the context with digest
// (its label says so).
func builtFrom(have image.InspectResponse, digest string) bool {
	return have.Config != nil && have.Config.Labels[LabelContext] == digest
}

// pushed pushes img and returns its NAME@DIGEST as the engine now knows it.
func pushed(ctx context.Context, api *client.Client, img Image) (string, error) {
	if err := push(ctx, api, img); err != nil {
		return "", err
	}
	return repoDigest(ctx, api, img.Ref)
}

func build1(ctx context.Context, api *client.Client, img Image) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(img.Context.Tar(pw)) }()
	defer pr.Close()
	r, err := api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:       []string{img.Ref},
		Dockerfile: img.Context.Dockerfile,
		Labels:     map[string]string{LabelContext: img.Context.Digest},
		BuildArgs:  img.Args,
		Target:     img.Target,
		Remove:     true,
		// The classic builder: every engine shoal provisions has it
		// (BuildKit over the API needs a session).
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("service %s: build %s from %s: %w", img.Service, img.Ref, img.Context.Dir, err)
	}
	defer r.Body.Close()
	if err := follow(r.Body); err != nil {
		return fmt.Errorf("service %s: build %s from %s: %w", img.Service, img.Ref, img.Context.Dir, err)
	}
	return nil
}

func push(ctx context.Context, api *client.Client, img Image) error {
	// The cluster's registry takes pushes without credentials; the
	// header must be there all the same.
	r, err := api.ImagePush(ctx, img.Ref, client.ImagePushOptions{RegistryAuth: "e30="})
	if err != nil {
		return fmt.Errorf("service %s: push %s: %w", img.Service, img.Ref, err)
	}
	defer r.Close()
	if err := follow(r); err != nil {
		return fmt.Errorf("service %s: push %s: %w", img.Service, img.Ref, err)
	}
	return nil
}

// follow reads a JSON message stream to its end; its error, if any, with
// the last lines of output before it.
func follow(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return stepError(m.Error.Message, tail)
		}
		if line := strings.TrimSpace(m.Stream); line != "" {
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}
}

func stepError(msg string, tail []string) error {
	if len(tail) == 0 {
		return errors.New(msg)
	}
	return fmt.Errorf("%s (last output: %s)", msg, strings.Join(tail, " | "))
}

// repoDigest is ref's NAME@sha256:... as the engine knows it from a push
// or pull ("" when it has none).
func repoDigest(ctx context.Context, api *client.Client, ref string) (string, error) {
	have, err := api.ImageInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	return digestIn(have.InspectResponse, ref), nil
}

// digestIn is ref's NAME@sha256:... among an image's repo digests ("" when
// the engine has none for that repository).
func digestIn(have image.InspectResponse, ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	for _, d := range have.RepoDigests {
		if name, _, ok := strings.Cut(d, "@"); ok && name == named.Name() {
			return d
		}
	}
	return ""
}

// inRegistry tells whether the registry serves ref with the digest the
// engine has (false when it cannot say: an old engine, a registry that lost
// its data).
func inRegistry(ctx context.Context, api *client.Client, ref, pinned string) bool {
	d, err := api.DistributionInspect(ctx, ref, client.DistributionInspectOptions{})
	if err != nil {
		return false
	}
	_, digest, _ := strings.Cut(pinned, "@")
	return d.Descriptor.Digest.String() == digest
}
