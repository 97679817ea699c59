package stack

import (
	"regexp"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// Current is what a swarm has of a stack: the objects labelled with its
// namespace. Networks must also hold the external networks the stack names
// (Desired.External; or simply every network): swarm keeps network IDs in a
// service's spec, and an ID with no name here reads as a change on every
// run. Only networks with the stack's label are ever removed.
type Current struct {
	Services []swarm.Service
	Networks []network.Summary
	Secrets  []swarm.Secret
	Configs  []swarm.Config
}

// ServiceChange is a service to update and the spec fields that differ
// (paths like TaskTemplate.ContainerSpec.Image).
type ServiceChange struct {
	Name   string
	Fields []string
}

// Plan is what to change in a swarm so it runs a stack as desired, by full
// names. Names in each list are sorted.
type Plan struct {
	CreateNetworks, RemoveNetworks []string
	CreateSecrets, RemoveSecrets   []string
	CreateConfigs, RemoveConfigs   []string
	CreateServices                 []string
	UpdateServices                 []ServiceChange
	RemoveServices                 []string
}

// Empty says whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.CreateNetworks)+len(p.RemoveNetworks)+len(p.CreateSecrets)+len(p.RemoveSecrets)+
		len(p.CreateConfigs)+len(p.RemoveConfigs)+len(p.CreateServices)+len(p.UpdateServices)+
		len(p.RemoveServices) == 0
}

// Decide plans what turns cur into d. Services, networks, secrets and
// configs of the stack that left the file are removed only with prune. A
// secret or config whose content changed is a new object (its name has the
// content's hash); the old one is superseded and removed in the same run
// (also without prune) once no service that stays uses it.
func Decide(d *Desired, cur Current, prune bool) Plan {
	var p Plan
	netNames := map[string]string{} // ID -> name
	for _, n := range cur.Networks {
		netNames[n.ID] = n.Name
	}

	kept := map[string]bool{} // current services that stay, by name
	current := map[string]swarm.Service{}
	for _, s := range cur.Services {
		if s.Spec.Labels[LabelNamespace] != d.Name {
			continue
		}
		current[s.Spec.Name] = s
		if _, ok := d.Services[s.Spec.Name]; !ok {
			if prune {
				p.RemoveServices = append(p.RemoveServices, s.Spec.Name)
			} else {
				kept[s.Spec.Name] = true
			}
		}
	}
	for _, name := range sortedKeys(d.Services) {
		s, ok := current[name]
		if !ok {
			p.CreateServices = append(p.CreateServices, name)
			continue
		}
		if fields := ServiceDiff(d.Services[name], s.Spec, netNames); len(fields) > 0 {
			p.UpdateServices = append(p.UpdateServices, ServiceChange{Name: name, Fields: fields})
		}
	}
	p.CreateNetworks, p.RemoveNetworks = planNetworks(d, cur.Networks, prune)

	inUse := usedObjects(d, cur.Services, kept)
	p.CreateSecrets, p.RemoveSecrets = planObjects(d.Name, secretNames(d.Secrets), currentSecrets(cur.Secrets), inUse, prune)
	p.CreateConfigs, p.RemoveConfigs = planObjects(d.Name, configNames(d.Configs), currentConfigs(cur.Configs), inUse, prune)
	slices.Sort(p.RemoveServices)
	return p
}

func planNetworks(d *Desired, cur []network.Summary, prune bool) (create, remove []string) {
	have := map[string]bool{}
	for _, n := range cur {
		if n.Labels[LabelNamespace] != d.Name {
			continue
		}
		have[n.Name] = true
		if _, ok := d.Networks[n.Name]; !ok && prune {
			remove = append(remove, n.Name)
		}
	}
	for _, name := range sortedKeys(d.Networks) {
		if !have[name] {
			create = append(create, name)
		}
	}
	slices.Sort(remove)
	return create, remove
}

// labelled is a secret or config in swarm: its name and labels.
type labelled struct {
	name   string
	labels map[string]string
}

func currentSecrets(in []swarm.Secret) []labelled {
	out := make([]labelled, 0, len(in))
	for _, s := range in {
		out = append(out, labelled{s.Spec.Name, s.Spec.Labels})
	}
	return out
}

func currentConfigs(in []swarm.Config) []labelled {
	out := make([]labelled, 0, len(in))
	for _, c := range in {
		out = append(out, labelled{c.Spec.Name, c.Spec.Labels})
	}
	return out
}

func secretNames(in []swarm.SecretSpec) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, s.Name)
	}
	return out
}

func configNames(in []swarm.ConfigSpec) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		out = append(out, c.Name)
	}
	return out
}

var hashSuffix = regexp.MustCompile(`_[0-9a-f]{12}$`)

// base is a secret's or config's name without its content hash: docker
// stack deploy's name for it, which a hand-deployed stack has.
func base(name string) string {
	return hashSuffix.ReplaceAllString(name, "")
}

func planObjects(stack string, desired []string, cur []labelled, inUse map[string]bool, prune bool) (create, remove []string) {
	want := map[string]bool{}
	bases := map[string]bool{}
	for _, n := range desired {
		want[n] = true
		bases[base(n)] = true
	}
	have := map[string]bool{}
	for _, o := range cur {
		if o.labels[LabelNamespace] != stack {
			continue
		}
		have[o.name] = true
		if want[o.name] || inUse[o.name] {
			continue
		}
		if prune || bases[base(o.name)] {
			remove = append(remove, o.name)
		}
	}
	for _, n := range desired {
		if !have[n] {
			create = append(create, n)
		}
	}
	slices.Sort(create)
	slices.Sort(remove)
	return create, remove
}

// usedObjects are the secrets and configs the services that run after the
// plan use: the desired ones and the current ones kept without prune.
func usedObjects(d *Desired, cur []swarm.Service, kept map[string]bool) map[string]bool {
	used := map[string]bool{}
	add := func(cs *swarm.ContainerSpec) {
		if cs == nil {
			return
		}
		for _, s := range cs.Secrets {
			used[s.SecretName] = true
		}
		for _, c := range cs.Configs {
			used[c.ConfigName] = true
		}
	}
	for _, s := range d.Services {
		add(s.TaskTemplate.ContainerSpec)
	}
	for _, s := range cur {
		if kept[s.Spec.Name] {
			add(s.Spec.TaskTemplate.ContainerSpec)
		}
	}
	return used
}

// isDigested says whether image names a digest (a pinned image).
func isDigested(image string) bool {
	return strings.Contains(image, "@sha256:")
}
