package clusterfile

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/internal/validate"
)

// validateFile checks a decoded file after fillDefaults and lookOutside:
// every value that may not reach a host, and what provisioning would refuse
// only after the hosts were made, each said at its place in the file,
// block by block in the file's order.
func validateFile(raw *file, reg Drivers) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if err := validate.Name(raw.Cluster.Name); err != nil {
		diags = append(diags, errAt(nil, "Invalid cluster name", "%v", err))
	}
	diags = append(diags, raw.unknown...)
	c := checker{
		reg: reg, def: raw.Defaults, defDriverOK: true,
		adopted: map[string]string{}, hostnames: map[string]string{}, seen: map[string]hcl.Range{},
	}
	diags = append(diags, c.defaults()...)
	for i := range raw.Machines {
		diags = append(diags, c.machineBlock(&raw.Machines[i])...)
	}
	if len(raw.Machines) == 0 {
		diags = append(diags, errAt(nil, "No machines", "the cluster file has no machine blocks"))
	}
	diags = append(diags, c.managers()...)
	if sb := raw.Swarm; sb != nil && sb.MaxUnavailable != nil {
		if n := *sb.MaxUnavailable; n < 1 || n > 100 {
			diags = append(diags, errAt(&sb.MaxUnavailableRange, "Invalid max_unavailable", "max_unavailable must be 1 to 100, not %d", n))
		}
	}
	if sb := raw.Swarm; sb != nil {
		diags = append(diags, swarmInitDiags(sb, registryPort(raw.Registry))...)
	}
	if rb := raw.Registry; rb != nil {
		diags = append(diags, c.registry(rb)...)
	}
	return append(diags, checkStacks(raw.Stacks)...)
}

// defaults checks the defaults block, if any: its driver once for every
// machine block that takes it.
func (c *checker) defaults() hcl.Diagnostics {
	def := c.def
	if def == nil {
		return nil
	}
	var diags hcl.Diagnostics
	if def.Driver != nil {
		if _, err := c.reg.Get(*def.Driver); err != nil {
			c.defDriverOK = false
			diags = append(diags, errAt(&def.DriverRange, "Unknown driver", "defaults: %v", err))
		}
	}
	diags = append(diags, def.drivers.diags...)
	if def.Engine != nil {
		diags = append(diags, checkEngine(def.Engine)...)
	}
	if def.DockerUser != nil {
		if err := validate.DockerUser(*def.DockerUser); err != nil {
			diags = append(diags, errAt(&def.DockerUserRange, "Invalid docker_user", "defaults: docker_user: %v", err))
		}
	}
	return diags
}

// managers checks the swarm's managers: at least one, better an odd
// number.
func (c *checker) managers() hcl.Diagnostics {
	managers := (&Spec{Machines: c.kept}).Managers()
	if len(c.kept) > 0 && len(managers) == 0 {
		return hcl.Diagnostics{errAt(&c.kept[0].Range, "No manager", "a swarm needs at least one machine with role = \"manager\"")}
	}
	if n := len(managers); n > 1 && n%2 == 0 {
		return hcl.Diagnostics{&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Even number of managers",
			Detail:  fmt.Sprintf("%d managers tolerate the loss of %d, as %d would: Raft needs a majority, so an odd number (%d or %d) is better", n, (n-1)/2, n-1, n-1, n+1),
			Subject: &managers[n-1].Range}}
	}
	return nil
}

// registry checks the registry block: its node one of the machines.
func (c *checker) registry(rb *registryBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if rb.Node != nil {
		if _, ok := c.seen[*rb.Node]; !ok {
			diags = append(diags, errAt(&rb.NodeRange, "Unknown registry node", "registry node %q is not a machine of this cluster (machines: %s)", *rb.Node, strings.Join(Names(c.kept), ", ")))
		}
	}
	if rb.Port != nil && validate.Port(*rb.Port) != nil {
		diags = append(diags, errAt(&rb.PortRange, "Invalid registry port", "%d is not a port", *rb.Port))
	}
	if rb.Image != nil {
		if err := validate.ImageRef(*rb.Image); err != nil {
			diags = append(diags, errAt(&rb.ImageRange, "Invalid registry image", "%v", err))
		}
	}
	if rb.Path != nil {
		if !strings.HasPrefix(*rb.Path, "/") {
			diags = append(diags, errAt(&rb.PathRange, "Invalid registry path", "%q must be an absolute path on the node", *rb.Path))
		} else if err := validate.RemotePath(*rb.Path); err != nil {
			diags = append(diags, errAt(&rb.PathRange, "Invalid registry path", "%v", err))
		}
	}
	return diags
}

// checker is what the checks of one file learn machine block by machine
// block: names, hostnames and adopted hosts are the cluster's, one each.
type checker struct {
	reg         Drivers
	def         *defaultsBlock // nil when the file has none
	defDriverOK bool           // the defaults' driver, if any, is known
	// adopted maps an adopted host:port to the first machine adopting
	// it: two would fight over its hostname, daemon.json and swarm
	// membership.
	adopted   map[string]string
	hostnames map[string]string    // lower case hostname -> machine
	seen      map[string]hcl.Range // machine name -> its block
	kept      []Node               // the machines said fine so far
}

// machineBlock checks one machine block and its machines.
func (c *checker) machineBlock(mb *machineBlock) hcl.Diagnostics {
	r := &mb.DefRange
	count := mb.count()
	if count < 1 || count > maxCount {
		return hcl.Diagnostics{errAt(valueAt(mb.CountRange, r), "Invalid count", "machine %q: count must be 1 to 100, not %d", mb.Name, count)}
	}
	if mb.Driver == nil && !c.defDriverOK {
		return nil // said once, at the defaults
	}
	dspec, err := c.reg.Get(mb.driver(c.def))
	if err != nil {
		return hcl.Diagnostics{errAt(valueAt(mb.DriverRange, r), "Unknown driver", "machine %q: %v", mb.Name, err)}
	}
	diags := machineAttrs(mb, count)
	if dspec.Adopts && count > 1 {
		return append(diags, errAt(valueAt(mb.CountRange, r), "Invalid count",
			"machine %q: the %s driver adopts one host, so count must be 1: write one machine block per host", mb.Name, dspec.Name))
	}
	for _, err := range mb.found.archives {
		diags = append(diags, errAt(r, "Image archive not found", "machine %q: image_archives: %v", mb.Name, err))
	}
	diags = append(diags, mb.drivers.diags...)
	for _, b := range mb.drivers.blocks {
		if b.spec.Name != dspec.Name {
			diags = append(diags, errAt(&b.defRange, "Driver block of another driver",
				"machine %q uses the %s driver, so its %s block would be ignored: set driver = %q, or remove the block", mb.Name, dspec.Name, b.typ, b.spec.Name))
		}
	}
	return append(diags, c.machines(mb, dspec)...)
}

// machineAttrs checks a machine block's own attributes: role,
// availability, labels, engine, docker_user and advertise_addr.
// labelDiags checks a machine's node labels: keys and values docker takes.
func labelDiags(mb *machineBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	r := &mb.DefRange
	for _, k := range sortedKeys(mb.Labels) {
		if err := validate.LabelKey(k); err != nil {
			diags = append(diags, errAt(r, "Invalid label", "machine %q: %v", mb.Name, err))
		} else if err := validate.LabelValue(mb.Labels[k]); err != nil {
			diags = append(diags, errAt(valueAt(mb.LabelsRange, r), "Invalid label", "machine %q: label %s: %v", mb.Name, k, err))
		}
	}
	return diags
}

func machineAttrs(mb *machineBlock, count int) hcl.Diagnostics {
	var diags hcl.Diagnostics
	r := &mb.DefRange
	if mb.Role != nil {
		if _, err := validate.ParseRole(*mb.Role); err != nil {
			diags = append(diags, errAt(valueAt(mb.RoleRange, r), "Invalid role", "machine %q: %v", mb.Name, err))
		}
	}
	if mb.Availability != nil {
		avail := *mb.Availability
		if _, err := validate.ParseAvailability(avail); err != nil || avail == "" {
			diags = append(diags, errAt(valueAt(mb.AvailabilityRange, r), "Invalid availability", "machine %q: availability must be active, pause or drain, not %q", mb.Name, avail))
		}
	}
	diags = append(diags, labelDiags(mb)...)
	if mb.Engine != nil {
		diags = append(diags, checkEngine(mb.Engine)...)
	}
	if mb.DockerUser != nil {
		if err := validate.DockerUser(*mb.DockerUser); err != nil {
			diags = append(diags, errAt(valueAt(mb.DockerUserRange, r), "Invalid docker_user", "machine %q: docker_user: %v", mb.Name, err))
		}
	}
	return append(diags, checkAdvertise(mb, count)...)
}

// checkAdvertise checks advertise_addr: an IP address, of one machine.
func checkAdvertise(mb *machineBlock, count int) hcl.Diagnostics {
	if mb.AdvertiseAddr == nil {
		return nil
	}
	advertise, at := *mb.AdvertiseAddr, valueAt(mb.AdvertiseAddrRange, &mb.DefRange)
	if net.ParseIP(advertise) == nil {
		return hcl.Diagnostics{errAt(at, "Invalid advertise_addr",
			"machine %q: advertise_addr must be an IP address (it goes in /etc/hosts and the registry's trust), not %q", mb.Name, advertise)}
	}
	if count > 1 {
		return hcl.Diagnostics{errAt(at, "Invalid advertise_addr",
			"machine %q: one advertise_addr cannot serve %d machines: write one machine block per host", mb.Name, count)}
	}
	return nil
}

// machines checks the block's machines: names and hostnames, one each in
// the cluster, and the block's settings once, on its first machine.
func (c *checker) machines(mb *machineBlock, dspec *Driver) hcl.Diagnostics {
	var diags hcl.Diagnostics
	r := &mb.DefRange
	checked := false
	for _, m := range mb.machines {
		if err := validate.Name(m.Name); err != nil {
			diags = append(diags, errAt(r, "Invalid machine name", "%v", err))
			continue
		}
		if prev, dup := c.seen[m.Name]; dup {
			diags = append(diags, errAt(r, "Duplicate machine name", "machine %q is defined twice (first at %s)", m.Name, prev.String()))
			continue
		}
		c.seen[m.Name] = mb.DefRange
		if !checked {
			// The same settings are checked once per block, not per count.
			checked = true
			diags = append(diags, c.settings(mb, dspec, m)...)
		}
		if err := validate.Hostname(m.Hostname); err != nil {
			diags = append(diags, errAt(r, "Invalid hostname", "machine %q: %v", m.Name, err))
		} else if other, dup := c.hostnames[strings.ToLower(m.Hostname)]; dup {
			diags = append(diags, errAt(valueAt(mb.HostnameRange, r), "Duplicate hostname",
				"machines %q and %q both have hostname %q: /etc/hosts, the registry's placement and peer SSH need one name per node", other, m.Name, m.Hostname))
		} else {
			c.hostnames[strings.ToLower(m.Hostname)] = m.Name
		}
		c.kept = append(c.kept, m)
	}
	return diags
}

// settings checks the driver settings of a machine block, on its first
// machine: what ~/.ssh/config could not give, an adopted host's settings at
// their attributes, then the driver's own check.
func (c *checker) settings(mb *machineBlock, dspec *Driver, m Node) hcl.Diagnostics {
	r := &mb.DefRange
	if err := mb.found.resolve; err != nil {
		return hcl.Diagnostics{errAt(r, "Invalid ssh_config", "machine %q: %v", mb.Name, err)}
	}
	if dspec.Adopts {
		// Said at the attribute, in the file's words: the machine's
		// driver block, else the defaults', else the machine block.
		at := func(name string) *hcl.Range {
			if rng, ok := mb.drivers.valueRange(dspec, name); ok {
				return &rng
			}
			if rng, ok := c.def.driverValue(dspec, name); ok {
				return &rng
			}
			return r
		}
		if diags := checkSSH(r, at, m.Name, m.DriverConfig, c.adopted); diags.HasErrors() {
			return diags
		}
	}
	if err := mb.found.settings; err != nil {
		return hcl.Diagnostics{errAt(r, "Invalid "+dspec.Name+" settings", "machine %q: %v", mb.Name, err)}
	}
	return nil
}

// checkEngine refuses what provisioning would refuse only after the hosts
// were made, and anything that may not reach a host: each value at its
// attribute.
func checkEngine(e *engineBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if e.Install != nil {
		if _, err := validate.ParseInstallMode(*e.Install); err != nil || *e.Install == "" {
			diags = append(diags, errAt(&e.InstallRange, "Invalid engine install", "install must be auto, repo, distro or skip, not %q", *e.Install))
		}
	}
	for _, a := range []engineAttr{
		{"version", "Invalid engine version", optional(e.Version), &e.VersionRange, validate.EngineVersion},
		{"repo_url", "Invalid engine repo_url", optional(e.RepoURL), &e.RepoURLRange, validate.RepoURL},
		{"os_mirror", "Invalid engine os_mirror", optional(e.OSMirror), &e.OSMirrorRange, validate.RepoURL},
		{"insecure_registries", "Invalid insecure registry", e.InsecureRegistries, &e.InsecureRegistriesRange, validate.InsecureRegistry},
		{"registry_mirrors", "Invalid registry mirror", e.RegistryMirrors, &e.RegistryMirrorsRange, validate.URL},
		{"labels", "Invalid engine label", e.Labels, &e.LabelsRange, func(l string) error { _, _, err := validate.Label(l); return err }},
	} {
		diags = append(diags, a.check()...)
	}
	return diags
}

// engineAttr is an engine attribute's values and the rule each must pass.
type engineAttr struct {
	name, summary string
	values        []string
	rng           *hcl.Range
	rule          func(string) error
}

func (a engineAttr) check() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, v := range a.values {
		if err := a.rule(v); err != nil {
			diags = append(diags, errAt(a.rng, a.summary, "%s: %v", a.name, err))
		}
	}
	return diags
}

// optional is an optional attribute's value as a list: none or one.
func optional(p *string) []string {
	if p == nil {
		return nil
	}
	return []string{*p}
}

// checkSSH checks the settings of an adopted host, each at its attribute,
// and that no other machine block adopts the same host:port (adopted maps
// it to the first machine's name).
func checkSSH(r *hcl.Range, at func(string) *hcl.Range, name string, cfg any, adopted map[string]string) hcl.Diagnostics {
	var c struct {
		Host    string `json:"host"`
		Port    int    `json:"port"`
		User    string `json:"user"`
		HostKey string `json:"hostKey"`
	}
	raw, _ := json.Marshal(cfg)
	_ = json.Unmarshal(raw, &c)
	var diags hcl.Diagnostics
	if c.Host != "" {
		if err := validate.Host(c.Host); err != nil {
			diags = append(diags, errAt(r, "Invalid address", "machine %q: ssh host: %v", name, err))
		}
	}
	if err := validate.Port(c.Port); err != nil {
		diags = append(diags, errAt(at("port"), "Invalid ssh port", "machine %q: ssh port: %v", name, err))
	}
	if err := validate.UserName(c.User); err != nil {
		diags = append(diags, errAt(at("user"), "Invalid ssh user", "machine %q: ssh user: %v", name, err))
	}
	if c.HostKey != "" {
		if err := validate.Fingerprint(c.HostKey); err != nil {
			diags = append(diags, errAt(at("host_key"), "Invalid host key fingerprint", "machine %q: host_key: %v", name, err))
		}
	}
	if c.Host != "" && !diags.HasErrors() {
		key := hostKey(c.Host, c.Port)
		if first, dup := adopted[key]; dup {
			diags = append(diags, errAt(at("host"), "Same host in two machine blocks",
				"machines %q and %q both adopt %s: one host is one machine", first, name, key))
		} else {
			adopted[key] = name
		}
	}
	return diags
}

// hostKey is host:port with the host in one spelling (an IP address in its
// canonical form, a name in lower case).
func hostKey(host string, port int) string {
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return net.JoinHostPort(strings.ToLower(host), fmt.Sprint(port))
}

// valueAt is where a value is written, or its block when it came from
// elsewhere (the defaults, the driver).
func valueAt(value hcl.Range, block *hcl.Range) *hcl.Range {
	if value == (hcl.Range{}) {
		return block
	}
	return &value
}

func errAt(rng *hcl.Range, summary, detail string, a ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, a...), Subject: rng}
}

// Names lists the machines' names, in order.
func Names(ms []Node) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
