package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/store"
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
// were made.
func checkEngine(e *engineBlock, r *hcl.Range) hcl.Diagnostics {
	if e.Install != nil {
		switch *e.Install {
		case "auto", "repo", "distro", "skip":
		default:
			return hcl.Diagnostics{errAt(r, "Invalid engine install", "install must be auto, repo, distro or skip, not %q", *e.Install)}
		}
	}
	return nil
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

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

func build(raw *file, body hcl.Body, baseDir string, ctx *hcl.EvalContext, reg *drivers.Registry) (*Spec, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	spec := &Spec{Name: raw.Cluster.Name}
	if err := store.ValidateName(spec.Name); err != nil {
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
			diags = append(diags, checkEngine(def.Engine, nestedAttrRange(body, "defaults", 0, "engine", "install"))...)
		}
	}
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
		role := "worker"
		if mb.Role != nil {
			role = *mb.Role
		}
		if role != "manager" && role != "worker" {
			diags = append(diags, errAt(attrRange(body, "machine", i, "role"), "Invalid role", "machine %q: role must be \"manager\" or \"worker\", not %q", mb.Name, role))
		}
		avail := ""
		if mb.Availability != nil {
			avail = *mb.Availability
			if avail != "active" && avail != "drain" && avail != "pause" {
				diags = append(diags, errAt(attrRange(body, "machine", i, "availability"), "Invalid availability", "machine %q: availability must be active, drain or pause, not %q", mb.Name, avail))
			}
		}
		for k := range mb.Labels {
			if k == "" || strings.ContainsAny(k, " =") {
				diags = append(diags, errAt(r, "Invalid label", "machine %q: label key %q", mb.Name, k))
			}
		}
		if mb.Engine != nil {
			diags = append(diags, checkEngine(mb.Engine, nestedAttrRange(body, "machine", i, "engine", "install"))...)
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
			if err := store.ValidateName(name); err != nil {
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
				var verr error
				if dspec.Validate != nil {
					verr = dspec.Validate(cfg)
				}
				if verr != nil {
					diags = append(diags, errAt(r, "Invalid "+dspec.Name+" settings", "machine %q: %v", mb.Name, verr))
				} else if dspec.Name == "ssh" {
					diags = append(diags, checkAddress(r, name, cfg)...)
				}
			}
			hostname := name
			if mb.Hostname != nil {
				hostname = *mb.Hostname
				if count > 1 {
					hostname = fmt.Sprintf("%s-%d", hostname, n)
				}
			}
			if !hostnameRE.MatchString(hostname) {
				diags = append(diags, errAt(r, "Invalid hostname", "machine %q: %q is not a valid hostname", name, hostname))
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
			if *rb.Port < 1 || *rb.Port > 65535 {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "port"), "Invalid registry port", "%d is not a port", *rb.Port))
			}
		}
		if rb.Image != nil {
			spec.Registry.Image = *rb.Image
		}
		if rb.Path != nil {
			spec.Registry.Path = *rb.Path
			if !strings.HasPrefix(*rb.Path, "/") {
				diags = append(diags, errAt(attrRange(body, "registry", 0, "path"), "Invalid registry path", "%q must be an absolute path on the node", *rb.Path))
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

// checkAddress checks the host of an adopted machine.
func checkAddress(r *hcl.Range, name string, cfg any) hcl.Diagnostics {
	var fields struct {
		Host string `json:"host"`
	}
	raw, _ := json.Marshal(cfg)
	_ = json.Unmarshal(raw, &fields)
	if fields.Host == "" {
		return nil // the driver's own check said so
	}
	if net.ParseIP(fields.Host) == nil && !hostnameRE.MatchString(fields.Host) {
		return hcl.Diagnostics{errAt(r, "Invalid address", "machine %q: ssh host %q is neither an IP address nor a host name", name, fields.Host)}
	}
	return nil
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
		if b.TLS != nil {
			e.TLS = *b.TLS
		}
		e.InsecureRegistries = append(e.InsecureRegistries, b.InsecureRegistries...)
		e.RegistryMirrors = append(e.RegistryMirrors, b.RegistryMirrors...)
		e.Labels = append(e.Labels, b.Labels...)
	}
	return e
}
