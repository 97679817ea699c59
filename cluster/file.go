// Package cluster plans what would change and converges the real machines
// to a cluster file (read by package clusterfile): hosts made or adopted in
// parallel, provisioned in parallel, then made one swarm with a registry.
package cluster

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/drivers"
)

// The cluster file, read and checked by package clusterfile, as the
// converger and its callers name it.
type (
	// Spec is a decoded, checked cluster file.
	Spec = clusterfile.Spec
	// Node is one machine of the cluster as the file wants it.
	Node = clusterfile.Node
	// Stack is one stack block of the file.
	Stack = clusterfile.Stack
)

// Load reads, decodes and checks a cluster file whose machines use the
// drivers of reg. Any error diagnostic means nothing may be created.
func Load(path string, opts clusterfile.Options, reg *drivers.Registry) (*Spec, hcl.Diagnostics) {
	return clusterfile.Load(path, opts, FileDrivers(reg))
}

// LoadSource is Load of a file's bytes (path names it in diagnostics).
func LoadSource(src []byte, path string, opts clusterfile.Options, reg *drivers.Registry) (*Spec, hcl.Diagnostics) {
	return clusterfile.LoadSource(src, path, opts, FileDrivers(reg))
}

// FileDrivers is what a cluster file may know of reg's drivers.
func FileDrivers(reg *drivers.Registry) clusterfile.Drivers {
	fd := fileDrivers{reg: reg, by: map[*drivers.Spec]*clusterfile.Driver{}}
	for _, s := range reg.All() {
		fd.by[s] = &clusterfile.Driver{Name: s.Name, Aliases: s.Aliases, NewConfig: s.NewConfig,
			Validate: s.Validate, Adopts: s.Adopts, Resolve: s.Resolve}
	}
	return fd
}

type fileDrivers struct {
	reg *drivers.Registry
	by  map[*drivers.Spec]*clusterfile.Driver
}

func (fd fileDrivers) Get(name string) (*clusterfile.Driver, error) {
	s, err := fd.reg.Get(name)
	if err != nil {
		return nil, err
	}
	return fd.by[s], nil
}

func (fd fileDrivers) All() []*clusterfile.Driver {
	var out []*clusterfile.Driver
	for _, s := range fd.reg.All() {
		out = append(out, fd.by[s])
	}
	return out
}
