package clusterfile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"github.com/shoal-dev/shoal/internal/store"
	"path/filepath"

	"github.com/shoal-dev/shoal/internal/validate"
)

// The defaults of a cluster file: what a machine is when its block and the
// defaults block leave a setting out. Nothing here reads the world or
// refuses a value; validate says what is wrong.

// defaultDriver is the driver of a machine that no block names one for.
const defaultDriver = "docker"

// fillDefaults makes the machines of every machine block (block.machines):
// count copies, named, each with its own driver config. A block whose count
// is out of bounds or whose driver is unknown makes none (validate says
// why). Relative image archives are taken to be next to the file, in
// baseDir.
func fillDefaults(raw *file, baseDir string, reg Drivers) {
	def := raw.Defaults
	if def == nil {
		def = &defaultsBlock{}
	}
	for i := range raw.Machines {
		mb := &raw.Machines[i]
		mb.machines = nil
		count := mb.count()
		if count < 1 || count > maxCount {
			continue
		}
		dspec, err := reg.Get(mb.driver(def))
		if err != nil {
			continue
		}
		// The block's config: its driver block on the defaults', else
		// the defaults', else the driver's own defaults.
		base, ok := mb.drivers.configs[dspec.Name]
		if !ok {
			base, ok = def.drivers.configs[dspec.Name]
		}
		tmpl := blockNode(mb, def, dspec, baseDir)
		for n := 1; n <= count; n++ {
			m := tmpl
			m.Name, m.Hostname = nthNames(mb, n, count)
			// Each machine gets its own config, so none shares one.
			if ok {
				m.DriverConfig = cloneConfig(dspec, base)
			} else {
				m.DriverConfig = dspec.NewConfig()
			}
			mb.machines = append(mb.machines, m)
		}
	}
}

// blockNode is what every machine of a block shares: the block's settings
// on the defaults'.
func blockNode(mb *machineBlock, def *defaultsBlock, dspec *Driver, baseDir string) Node {
	dockerUser := orElse(mb.DockerUser, orElse(def.DockerUser, ""))
	archives := mb.ImageArchives
	if archives == nil {
		archives = def.ImageArchives
	}
	archives = append([]string(nil), archives...)
	for j, a := range archives {
		if !filepath.IsAbs(a) && baseDir != "" {
			archives[j] = filepath.Join(baseDir, a)
		}
	}
	return Node{
		Role: validate.Role(orElse(mb.Role, string(validate.Worker))), Driver: dspec.Name,
		Setup:  store.Setup{DockerUser: dockerUser, Engine: mergeEngine(def.Engine, mb.Engine)},
		Labels: mb.Labels, Availability: orElse(mb.Availability, ""), ImageArchives: archives, Range: mb.DefRange,
		AdvertiseAddr: orElse(mb.AdvertiseAddr, ""),
	}
}

// nthNames names the block's n-th machine of count, and its host.
func nthNames(mb *machineBlock, n, count int) (name, hostname string) {
	name, hostname = mb.Name, mb.Name
	if mb.Count != nil {
		name = fmt.Sprintf("%s-%d", mb.Name, n)
		hostname = name
	}
	if mb.Hostname != nil {
		hostname = *mb.Hostname
		if count > 1 {
			hostname = fmt.Sprintf("%s-%d", hostname, n)
		}
	}
	return name, hostname
}

// orElse is *p, or else when the file does not say.
func orElse(p *string, otherwise string) string {
	if p == nil {
		return otherwise
	}
	return *p
}

// maxCount bounds a machine block's count: a typo must not make thousands.
const maxCount = 100

// count is how many machines the block makes.
func (mb *machineBlock) count() int {
	if mb.Count != nil {
		return *mb.Count
	}
	return 1
}

// driver is the driver the block's machines use, as written.
func (mb *machineBlock) driver(def *defaultsBlock) string {
	switch {
	case mb.Driver != nil:
		return *mb.Driver
	case def != nil && def.Driver != nil:
		return *def.Driver
	}
	return defaultDriver
}

// specOf is the cluster of a valid file, after fillDefaults: its machines
// in file order, the swarm's settings and the registry, by default on the
// first manager.
func specOf(raw *file) *Spec {
	spec := &Spec{Name: raw.Cluster.Name, MaxUnavailable: 1, Stacks: stacksOf(raw.Stacks)}
	for _, mb := range raw.Machines {
		spec.Machines = append(spec.Machines, mb.machines...)
	}
	if sb := raw.Swarm; sb != nil {
		swarmOf(spec, sb)
	}
	spec.Registry = Registry{Enabled: true, Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}
	if managers := spec.Managers(); len(managers) > 0 {
		spec.Registry.Node = managers[0].Name
	}
	if rb := raw.Registry; rb != nil {
		r := &spec.Registry
		r.Enabled, r.Node, r.Port = valueOr(rb.Enabled, r.Enabled), valueOr(rb.Node, r.Node), valueOr(rb.Port, r.Port)
		r.Image, r.Path = valueOr(rb.Image, r.Image), valueOr(rb.Path, r.Path)
	}
	return spec
}

// swarmOf is the swarm block's settings in the spec.
func swarmOf(spec *Spec, sb *swarmBlock) {
	spec.Autolock = valueOr(sb.Autolock, false)
	spec.AutoUnlock = valueOr(sb.AutoUnlock, false)
	spec.ForceRejoin = valueOr(sb.ForceRejoin, false)
	spec.MaxUnavailable = cmp.Or(valueOr(sb.MaxUnavailable, 0), spec.MaxUnavailable)
	spec.DefaultAddrPool = sb.DefaultAddrPool
	spec.DataPathPort = valueOr(sb.DataPathPort, 0)
	spec.OverlayMTU = valueOr(sb.OverlayMTU, 0)
}

// valueOr is what an optional attribute says, or def when it says nothing.
func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// cloneConfig copies a driver config so that machines do not share one.
func cloneConfig(spec *Driver, cfg any) any {
	if c, ok := cfg.(interface{ Clone() any }); ok {
		return c.Clone() // keeps what JSON does not carry (passwords)
	}
	out := spec.NewConfig()
	raw, err := json.Marshal(cfg)
	if err == nil {
		_ = json.Unmarshal(raw, out)
	}
	return out
}

// mergeEngine is the engine of a machine: the defaults' settings, then the
// machine's; lists add up.
func mergeEngine(def, m *engineBlock) store.Engine {
	e := store.Engine{Install: "auto", TLS: true}
	for _, b := range []*engineBlock{def, m} {
		if b == nil {
			continue
		}
		if b.Install != nil {
			e.Install = *b.Install
		}
		if b.Version != nil {
			e.Version = *b.Version
		}
		if b.RepoURL != nil {
			e.RepoURL = *b.RepoURL
		}
		if b.OSMirror != nil {
			e.OSMirror = *b.OSMirror
		}
		if b.ReplaceConflicting != nil {
			e.ReplaceConflicting = *b.ReplaceConflicting
		}
		if b.TLS != nil {
			e.TLS = *b.TLS
		}
		e.InsecureRegistries = append(e.InsecureRegistries, b.InsecureRegistries...)
		e.RegistryMirrors = append(e.RegistryMirrors, b.RegistryMirrors...)
		e.Labels = append(e.Labels, b.Labels...)
	}
	return e
}
