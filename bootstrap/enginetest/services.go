package enginetest

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

func (e *Engine) TaskList(ctx context.Context, options client.TaskListOptions) ([]swarm.Task, error) {
	defer e.end()
	c, err := e.manage("TaskList")
	if err != nil {
		return nil, err
	}
	if err := only(options.Filters, "desired-state", "node", "service"); err != nil {
		return nil, err
	}
	f := options.Filters
	var out []swarm.Task
	for _, t := range c.tasks {
		if ds := get(f, "desired-state"); len(ds) > 0 && !slices.Contains(ds, string(t.DesiredState)) {
			continue
		}
		if ns := get(f, "node"); len(ns) > 0 && !slices.ContainsFunc(ns, func(ref string) bool { n := c.node(ref); return n != nil && n.id == t.NodeID }) {
			continue
		}
		if ss := get(f, "service"); len(ss) > 0 && !slices.ContainsFunc(ss, func(ref string) bool { s := c.service(ref); return s != nil && s.id == t.ServiceID }) {
			continue
		}
		out = append(out, *t)
	}
	return out, nil
}

func (c *cluster) service(ref string) *service {
	for _, s := range c.services {
		if s.id == ref || s.spec.Name == ref {
			return s
		}
	}
	return nil
}

func (c *cluster) apiService(s *service) swarm.Service {
	return swarm.Service{ID: s.id, Meta: swarm.Meta{Version: swarm.Version{Index: s.version}}, Spec: s.spec}
}

func (e *Engine) ServiceInspectWithRaw(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (swarm.Service, []byte, error) {
	defer e.end()
	c, err := e.manage("ServiceInspect " + serviceID)
	if err != nil {
		return swarm.Service{}, nil, err
	}
	s := c.service(serviceID)
	if s == nil {
		return swarm.Service{}, nil, notFound(fmt.Errorf("service %s not found", serviceID))
	}
	out := c.apiService(s)
	raw, err := json.Marshal(out)
	return out, raw, err
}

func validService(spec swarm.ServiceSpec) error {
	if spec.Name == "" || spec.Mode.Replicated == nil || spec.Mode.Replicated.Replicas == nil {
		return invalidParameter(errors.New("enginetest: a service needs a name and a replica count (replicated mode only)"))
	}
	return nil
}

func (e *Engine) ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
	defer e.end()
	c, err := e.manage("ServiceCreate " + spec.Name)
	if err != nil {
		return swarm.ServiceCreateResponse{}, err
	}
	if err := validService(spec); err != nil {
		return swarm.ServiceCreateResponse{}, err
	}
	if c.service(spec.Name) != nil {
		return swarm.ServiceCreateResponse{}, conflict(fmt.Errorf("rpc error: code = AlreadyExists desc = name conflicts with an existing object: service %s already exists", spec.Name))
	}
	s := &service{id: e.w.newID(), spec: spec, version: c.bump()}
	c.services = append(c.services, s)
	c.settle()
	return swarm.ServiceCreateResponse{ID: s.id}, nil
}

func (e *Engine) ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, spec swarm.ServiceSpec) (swarm.ServiceUpdateResponse, error) {
	defer e.end()
	c, err := e.manage("ServiceUpdate " + serviceID)
	if err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	s := c.service(serviceID)
	switch {
	case s == nil:
		return swarm.ServiceUpdateResponse{}, notFound(fmt.Errorf("service %s not found", serviceID))
	case version.Index != s.version:
		return swarm.ServiceUpdateResponse{}, errSequence
	}
	if err := validService(spec); err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	s.spec, s.version = spec, c.bump()
	c.settle()
	return swarm.ServiceUpdateResponse{}, nil
}

func (e *Engine) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	defer e.end()
	if err := e.begin("ImageInspect " + ref); err != nil {
		return image.InspectResponse{}, err
	}
	id, ok := e.images[ref]
	if !ok {
		return image.InspectResponse{}, notFound(fmt.Errorf("No such image: %s", ref))
	}
	return image.InspectResponse{ID: id, RepoTags: []string{ref}}, nil
}

// ImageLoad takes the tags of a `docker save` archive (gzip or not).
func (e *Engine) ImageLoad(ctx context.Context, input io.Reader) (io.ReadCloser, error) {
	defer e.end()
	if err := e.begin("ImageLoad"); err != nil {
		return nil, err
	}
	var r io.Reader = bufio.NewReader(input)
	if magic, _ := r.(*bufio.Reader).Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, invalidParameter(err)
		}
		r = zr
	}
	var tags []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidParameter(err)
		}
		if h.Name == "manifest.json" {
			var m []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return nil, invalidParameter(err)
			}
			for _, x := range m {
				tags = append(tags, x.RepoTags...)
			}
		}
	}
	var out strings.Builder
	for _, t := range tags {
		e.images[t] = "sha256:" + e.w.newID()
		fmt.Fprintf(&out, "{\"stream\":\"Loaded image: %s\\n\"}\n", t)
	}
	return io.NopCloser(strings.NewReader(out.String())), nil
}
