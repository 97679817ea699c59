package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/validate"
)

// blockRanges returns the definition ranges of the top-level blocks of a
// type, in file order (gohcl does not keep them).
func blockRanges(body hcl.Body, typ string) []hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []hcl.Range
	for _, b := range sb.Blocks {
		if b.Type == typ {
			out = append(out, b.DefRange())
		}
	}
	return out
}

// nestedAttrRange is the range of attribute name in the first block of
// type inner inside the index-th block of typ.
func nestedAttrRange(body hcl.Body, typ string, index int, inner, name string) *hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	i := 0
	for _, b := range sb.Blocks {
		if b.Type != typ {
			continue
		}
		if i == index {
			for _, nb := range b.Body.Blocks {
				if nb.Type == inner {
					if a, ok := nb.Body.Attributes[name]; ok {
						r := a.Expr.Range()
						return &r
					}
					r := nb.DefRange()
					return &r
				}
			}
			r := b.DefRange()
			return &r
		}
		i++
	}
	return nil
}

// checkEngine refuses what provisioning would refuse only after the hosts
// were made, and anything that may not reach a host: each value at its
// attribute. at gives the range of an attribute of the engine block.
func checkEngine(e *engineBlock, at func(name string) *hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if e.Install != nil {
		if _, err := validate.ParseInstallMode(*e.Install); err != nil || *e.Install == "" {
			diags = append(diags, errAt(at("install"), "Invalid engine install", "install must be auto, repo, distro or skip, not %q", *e.Install))
		}
	}
	if e.Version != nil {
		if err := validate.EngineVersion(*e.Version); err != nil {
			diags = append(diags, errAt(at("version"), "Invalid engine version", "version: %v", err))
		}
	}
	if e.RepoURL != nil {
		if err := validate.RepoURL(*e.RepoURL); err != nil {
			diags = append(diags, errAt(at("repo_url"), "Invalid engine repo_url", "repo_url: %v", err))
		}
	}
	if e.OSMirror != nil {
		if err := validate.RepoURL(*e.OSMirror); err != nil {
			diags = append(diags, errAt(at("os_mirror"), "Invalid engine os_mirror", "os_mirror: %v", err))
		}
	}
	for _, r := range e.InsecureRegistries {
		if err := validate.InsecureRegistry(r); err != nil {
			diags = append(diags, errAt(at("insecure_registries"), "Invalid insecure registry", "insecure_registries: %v", err))
		}
	}
	for _, u := range e.RegistryMirrors {
		if err := validate.URL(u); err != nil {
			diags = append(diags, errAt(at("registry_mirrors"), "Invalid registry mirror", "registry_mirrors: %v", err))
		}
	}
	for _, l := range e.Labels {
		if _, _, err := validate.Label(l); err != nil {
			diags = append(diags, errAt(at("labels"), "Invalid engine label", "labels: %v", err))
		}
	}
	return diags
}

// attrRange is the range of attribute name in the index-th block of typ,
// or the block's own range when it has no such attribute.
func attrRange(body hcl.Body, typ string, index int, name string) *hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	i := 0
	for _, b := range sb.Blocks {
		if b.Type != typ {
			continue
		}
		if i == index {
			if a, ok := b.Body.Attributes[name]; ok {
				r := a.Expr.Range()
				return &r
			}
			r := b.DefRange()
			return &r
		}
		i++
	}
	return nil
}

// nthBlock is the index-th top-level block of type typ.
func nthBlock(body hcl.Body, typ string, index int) *hclsyntax.Block {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	i := 0
	for _, b := range sb.Blocks {
		if b.Type != typ {
			continue
		}
		if i == index {
			return b
		}
		i++
	}
	return nil
}

// innerAttr is the range of attribute name in the first inner block of
// one of types inside b; nil when there is none.
func innerAttr(b *hclsyntax.Block, types []string, name string) *hcl.Range {
	if b == nil {
		return nil
	}
	for _, nb := range b.Body.Blocks {
		for _, t := range types {
			if nb.Type == t {
				if a, ok := nb.Body.Attributes[name]; ok {
					r := a.Expr.Range()
					return &r
				}
			}
		}
	}
	return nil
}

// settingRange is where a machine's setting came from: its own inner block
// (engine, or a driver's block under any of its names), else the defaults'
// one, else the machine block.
func settingRange(body hcl.Body, index int, types []string, name string) *hcl.Range {
	if r := innerAttr(nthBlock(body, "machine", index), types, name); r != nil {
		return r
	}
	if r := innerAttr(nthBlock(body, "defaults", 0), types, name); r != nil {
		return r
	}
	if b := nthBlock(body, "machine", index); b != nil {
		r := b.DefRange()
		return &r
	}
	return nil
}

func errAt(rng *hcl.Range, summary, detail string, a ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, a...), Subject: rng}
}

// driverBlocks decodes the driver blocks of body (e.g. docker { ... }) into
// the configs of the drivers they name, on top of what is in cfgs already.
func driverBlocks(body hcl.Body, ctx *hcl.EvalContext, reg *drivers.Registry, cfgs map[string]any) ([]*hcl.Block, hcl.Diagnostics) {
	schema := &hcl.BodySchema{}
	for _, spec := range reg.All() {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: spec.Name})
		for _, a := range spec.Aliases {
			schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: a})
		}
	}
	content, diags := body.Content(schema)
	for _, b := range content.Blocks {
		spec, err := reg.Get(b.Type)
		if err != nil {
			continue
		}
		cfg, ok := cfgs[spec.Name]
		if !ok {
			cfg = spec.NewConfig()
			cfgs[spec.Name] = cfg
		}
		diags = append(diags, gohcl.DecodeBody(b.Body, ctx, cfg)...)
	}
	return content.Blocks, diags
}

func build(raw *file, body hcl.Body, baseDir string, ctx *hcl.EvalContext, reg *drivers.Registry) (*Spec, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	spec := &Spec{Name: raw.Cluster.Name}
	if err := validate.Name(spec.Name); err != nil {
		diags = append(diags, errAt(nil, "Invalid cluster name", "%v", err))
	}
	// Nothing unknown may hide in the file: a misspelt block would be ignored.
	_, d := raw.Remain.Content(&hcl.BodySchema{})
	diags = append(diags, d...)
	_, d = raw.Cluster.Remain.Content(&hcl.BodySchema{})
	diags = append(diags, d...)
	defDriver := "docker"
	defDriverOK := true
	defCfgs := map[string]any{}
	var def defaultsBlock
	if raw.Defaults != nil {
		def = *raw.Defaults
		if def.Driver != nil {
			defDriver = *def.Driver
			if _, err := reg.Get(defDriver); err != nil {
				defDriverOK = false
				diags = append(diags, errAt(attrRange(body, "defaults", 0, "driver"), "Unknown driver", "defaults: %v", err))
			}
		}
		_, d := driverBlocks(def.Remain, ctx, reg, defCfgs)
		diags = append(diags, d...)
		if def.Engine != nil {
			diags = append(diags, checkEngine(def.Engine, func(n string) *hcl.Range { return nestedAttrRange(body, "defaults", 0, "engine", n) })...)
		}
		if def.DockerUser != nil {
			if err := validate.DockerUser(*def.DockerUser); err != nil {
				diags = append(diags, errAt(attrRange(body, "defaults", 0, "docker_user"), "Invalid docker_user", "defaults: docker_user: %v", err))
			}
		}
	}
	// One adopted host may be in one machine block only: two would fight
	// over its hostname, daemon.json and swarm membership.
	adopted := map[string]string{}
	hostnames := map[string]string{}
	ranges := blockRanges(body, "machine")
	seen := map[string]hcl.Range{}
	for i, mb := range raw.Machines {
		var rng hcl.Range
		if i < len(ranges) {
			rng = ranges[i]
		}
		r := &rng
		count := 1
		if mb.Count != nil {
			count = *mb.Count
			if count < 1 || count > 100 {
				diags = append(diags, errAt(attrRange(body, "machine", i, "count"), "Invalid count", "machine %q: count must be 1 to 100, not %d", mb.Name, count))
				continue
			}
		}
		driver := defDriver
		if mb.Driver != nil {
			driver = *mb.Driver
		} else if !defDriverOK {
			continue // said once, at the defaults
		}
		dspec, err := reg.Get(driver)
		if err != nil {
			diags = append(diags, errAt(attrRange(body, "machine", i, "driver"), "Unknown driver", "machine %q: %v", mb.Name, err))
			continue
		}
		role := string(validate.Worker)
		if mb.Role != nil {
			role = *mb.Role
		}
		if _, err := validate.ParseRole(role); err != nil {
			diags = append(diags, errAt(attrRange(body, "machine", i, "role"), "Invalid role", "machine %q: %v", mb.Name, err))
		}
		avail := ""
		if mb.Availability != nil {
			avail = *mb.Availability
			if _, err := validate.ParseAvailability(avail); err != nil || avail == "" {
				diags = append(diags, errAt(attrRange(body, "machine", i, "availability"), "Invalid availability", "machine %q: availability must be active, pause or drain, not %q", mb.Name, avail))
			}
		}
		for _, k := range sortedKeys(mb.Labels) {
			if err := validate.LabelKey(k); err != nil {
				diags = append(diags, errAt(r, "Invalid label", "machine %q: %v", mb.Name, err))
			} else if err := validate.LabelValue(mb.Labels[k]); err != nil {
				diags = append(diags, errAt(attrRange(body, "machine", i, "labels"), "Invalid label", "machine %q: label %s: %v", mb.Name, k, err))
			}
		}
		if mb.Engine != nil {
			diags = append(diags, checkEngine(mb.Engine, func(n string) *hcl.Range { return nestedAttrRange(body, "machine", i, "engine", n) })...)
		}
		if mb.DockerUser != nil {
			if err := validate.DockerUser(*mb.DockerUser); err != nil {
				diags = append(diags, errAt(attrRange(body, "machine", i, "docker_user"), "Invalid docker_user", "machine %q: docker_user: %v", mb.Name, err))
			}
		}
		if dspec.Name == "ssh" && count > 1 {
			diags = append(diags, errAt(attrRange(body, "machine", i, "count"), "Invalid count",
				"machine %q: the ssh driver adopts one host, so count must be 1: write one machine block per host", mb.Name))
			continue
		}
		engine := mergeEngine(def.Engine, mb.Engine)
		archives := append([]string(nil), mb.ImageArchives...)
		if mb.ImageArchives == nil {
			archives = append([]string(nil), def.ImageArchives...)
		}
		for j, a := range archives {
			if !filepath.IsAbs(a) && baseDir != "" {
				a = filepath.Join(baseDir, a) // relative to the cluster file
			}
			abs, err := filepath.Abs(a)
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err != nil {
				diags = append(diags, errAt(r, "Image archive not found", "machine %q: image_archives: %v", mb.Name, err))
			}
			archives[j] = abs
		}
		dockerUser := ""
		if def.DockerUser != nil {
			dockerUser = *def.DockerUser
		}
		if mb.DockerUser != nil {
			dockerUser = *mb.DockerUser
		}
		// The machine's driver blocks are decoded once, then copied per count.
		own := map[string]any{}
		if base, ok := defCfgs[dspec.Name]; ok {
			own[dspec.Name] = cloneConfig(dspec, base)
		}
		blocks, d := driverBlocks(mb.Remain, ctx, reg, own)
		diags = append(diags, d...)
		for _, b := range blocks {
			if bs, err := reg.Get(b.Type); err == nil && bs.Name != dspec.Name {
				rng := b.DefRange
				diags = append(diags, errAt(&rng, "Driver block of another driver",
					"machine %q uses the %s driver, so its %s block would be ignored: set driver = %q, or remove the block", mb.Name, dspec.Name, b.Type, bs.Name))
			}
		}
		validated := false
		for n := 1; n <= count; n++ {
			name := mb.Name
			if mb.Count != nil {
				name = fmt.Sprintf("%s-%d", mb.Name, n)
			}
			if err := validate.Name(name); err != nil {
				diags = append(diags, errAt(r, "Invalid machine name", "%v", err))
				continue
			}
			if prev, dup := seen[name]; dup {
				diags = append(diags, errAt(r, "Duplicate machine name", "machine %q is defined twice (first at %s)", name, prev.String()))
				continue
			}
			seen[name] = rng
			// Each machine gets its own config: defaults, then its block.
			var cfg any
			if c, ok := own[dspec.Name]; ok {
				cfg = cloneConfig(dspec, c)
			} else {
				cfg = dspec.NewConfig()
			}
			if !validated {
				// The same settings are checked once per block, not per count.
				validated = true
				var sd hcl.Diagnostics
				if dspec.Name == "ssh" {
					// Said at the attribute, in the file's words; the
					// driver's own check (a missing host or key) after.
					at := func(n string) *hcl.Range {
						return settingRange(body, i, append([]string{dspec.Name}, dspec.Aliases...), n)
					}
					sd = checkSSH(r, at, name, cfg, adopted)
					diags = append(diags, sd...)
				}
				if dspec.Validate != nil && !sd.HasErrors() {
					if verr := dspec.Validate(cfg); verr != nil {
						diags = append(diags, errAt(r, "Invalid "+dspec.Name+" settings", "machine %q: %v", mb.Name, verr))
					}
				}
			}
			hostname := name
			if mb.Hostname != nil {
				hostname = *mb.Hostname
				if count > 1 {
					hostname = fmt.Sprintf("%s-%d", hostname, n)
				}
			}
			if err := validate.Hostname(hostname); err != nil {
				diags = append(diags, errAt(r, "Invalid hostname", "machine %q: %v", name, err))
			} else if other, dup := hostnames[strings.ToLower(hostname)]; dup {
				diags = append(diags, errAt(attrRange(body, "machine", i, "hostname"), "Duplicate hostname",
					"machines %q and %q both have hostname %q: /etc/hosts, the registry's placement and peer SSH need one name per node", other, name, hostname))
			} else {
				hostnames[strings.ToLower(hostname)] = name
			}
			spec.Machines = append(spec.Machines, Machine{
				Name: name, Role: role, Driver: dspec.Name, DriverConfig: cfg, Hostname: hostname, DockerUser: dockerUser,
				Labels: mb.Labels, Availability: avail, ImageArchives: archives, Engine: engine, Range: rng,
			})
		}
	}
	if len(raw.Machines) == 0 {
		diags = append(diags, errAt(nil, "No machines", "the cluster file has no machine blocks"))
	}
	managers := spec.Managers()
	if len(spec.Machines) > 0 && len(managers) == 0 {
		diags = append(diags, errAt(&spec.Machines[0].Range, "No manager", "a swarm needs at least one machine with role = \"manager\""))
	}
	if n := len(managers); n > 1 && n%2 == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Even number of managers",
			Detail:  fmt.Sprintf("%d managers tolerate the loss of %d, as %d would: Raft needs a majority, so an odd number (%d or %d) is better", n, (n-1)/2, n-1, n-1, n+1),
			Subject: &managers[n-1].Range})
	}
	if sb := raw.Swarm; sb != nil {
		spec.Autolock = sb.Autolock != nil && *sb.Autolock
		spec.AutoUnlock = sb.AutoUnlock != nil && *sb.AutoUnlock
		spec.ForceRejoin = sb.ForceRejoin != nil && *sb.ForceRejoin
	}
	spec.Registry = Registry{Enabled: true, Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}
	if len(managers) > 0 {
		spec.Registry.Node = managers[0].Name
	}
	if rb := raw.Registry; rb != nil {
		if rb.Enabled != nil {
			spec.Registry.Enabled = *rb.Enabled
		}
		if rb.Node != nil {
			spec.Registry.Node = *rb.Node
			if _, ok := seen[*rb.Node]; !ok {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "node"), "Unknown registry node", "registry node %q is not a machine of this cluster (machines: %s)", *rb.Node, strings.Join(names(spec.Machines), ", ")))
			}
		}
		if rb.Port != nil {
			spec.Registry.Port = *rb.Port
			if validate.Port(*rb.Port) != nil {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "port"), "Invalid registry port", "%d is not a port", *rb.Port))
			}
		}
		if rb.Image != nil {
			spec.Registry.Image = *rb.Image
			if err := validate.ImageRef(*rb.Image); err != nil {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "image"), "Invalid registry image", "%v", err))
			}
		}
		if rb.Path != nil {
			spec.Registry.Path = *rb.Path
			if !strings.HasPrefix(*rb.Path, "/") {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "path"), "Invalid registry path", "%q must be an absolute path on the node", *rb.Path))
			} else if err := validate.RemotePath(*rb.Path); err != nil {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "path"), "Invalid registry path", "%v", err))
			}
		}
	}
	return spec, diags
}

func names(ms []Machine) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
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

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cloneConfig copies a driver config so that machines do not share one.
func cloneConfig(spec *drivers.Spec, cfg any) any {
	out := spec.NewConfig()
	raw, err := json.Marshal(cfg)
	if err == nil {
		_ = json.Unmarshal(raw, out)
	}
	return out
}

func mergeEngine(def, m *engineBlock) Engine {
	e := Engine{Install: "auto", TLS: true}
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
