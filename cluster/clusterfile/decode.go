package clusterfile

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
)

// The schema of a cluster file. Each block keeps where it and the values it
// sets are written: gohcl fills the def_range and attr_value_range fields,
// so that validate can say every mistake at its place. A range is the zero
// hcl.Range when the file does not say the value.

// file is the schema of a cluster file.
type file struct {
	Cluster   clusterBlock    `hcl:"cluster,block"`
	Variables []variableBlock `hcl:"variable,block"`
	Defaults  *defaultsBlock  `hcl:"defaults,block"`
	Machines  []machineBlock  `hcl:"machine,block"`
	Swarm     *swarmBlock     `hcl:"swarm,block"`
	Registry  *registryBlock  `hcl:"registry,block"`
	Stacks    []stackBlock    `hcl:"stack,block"`
	Remain    hcl.Body        `hcl:",remain"`

	// unknown is what no schema names, in the file and in its cluster
	// block (decode): a misspelt block would be silently ignored.
	unknown hcl.Diagnostics
}

type clusterBlock struct {
	Name   string   `hcl:"name,label"`
	Remain hcl.Body `hcl:",remain"`
}

type variableBlock struct {
	Name        string         `hcl:"name,label"`
	Type        hcl.Expression `hcl:"type,optional"`
	Default     cty.Value      `hcl:"default,optional"`
	Description string         `hcl:"description,optional"`
	// Sensitive values (passwords) are redacted from every output.
	Sensitive bool      `hcl:"sensitive,optional"`
	DefRange  hcl.Range `hcl:",def_range"`
}

// typeOf reads a variable's type constraint (string, number, bool,
// list(string), ...); cty.NilType when the block has none.
func (b variableBlock) typeOf() (cty.Type, hcl.Diagnostics) {
	if b.Type == nil {
		return cty.NilType, nil
	}
	if v, d := b.Type.Value(nil); !d.HasErrors() && v.IsNull() {
		return cty.NilType, nil // no type attribute
	}
	return typeexpr.TypeConstraint(b.Type)
}

type engineBlock struct {
	Install            *string  `hcl:"install,optional"`
	Version            *string  `hcl:"version,optional"`
	RepoURL            *string  `hcl:"repo_url,optional"`
	OSMirror           *string  `hcl:"os_mirror,optional"`
	ReplaceConflicting *bool    `hcl:"replace_conflicting,optional"`
	InsecureRegistries []string `hcl:"insecure_registries,optional"`
	RegistryMirrors    []string `hcl:"registry_mirrors,optional"`
	Labels             []string `hcl:"labels,optional"`
	TLS                *bool    `hcl:"tls,optional"`

	InstallRange            hcl.Range `hcl:"install,attr_value_range"`
	VersionRange            hcl.Range `hcl:"version,attr_value_range"`
	RepoURLRange            hcl.Range `hcl:"repo_url,attr_value_range"`
	OSMirrorRange           hcl.Range `hcl:"os_mirror,attr_value_range"`
	InsecureRegistriesRange hcl.Range `hcl:"insecure_registries,attr_value_range"`
	RegistryMirrorsRange    hcl.Range `hcl:"registry_mirrors,attr_value_range"`
	LabelsRange             hcl.Range `hcl:"labels,attr_value_range"`
}

type defaultsBlock struct {
	Driver        *string      `hcl:"driver,optional"`
	DockerUser    *string      `hcl:"docker_user,optional"`
	ImageArchives []string     `hcl:"image_archives,optional"`
	Engine        *engineBlock `hcl:"engine,block"`
	Remain        hcl.Body     `hcl:",remain"` // driver blocks

	DefRange        hcl.Range `hcl:",def_range"`
	DriverRange     hcl.Range `hcl:"driver,attr_value_range"`
	DockerUserRange hcl.Range `hcl:"docker_user,attr_value_range"`

	drivers driverBlocks // decode
}

type machineBlock struct {
	Name          string            `hcl:"name,label"`
	Count         *int              `hcl:"count,optional"`
	Role          *string           `hcl:"role,optional"`
	Driver        *string           `hcl:"driver,optional"`
	Hostname      *string           `hcl:"hostname,optional"`
	DockerUser    *string           `hcl:"docker_user,optional"`
	Labels        map[string]string `hcl:"labels,optional"`
	Availability  *string           `hcl:"availability,optional"`
	ImageArchives []string          `hcl:"image_archives,optional"`
	// AdvertiseAddr is the address the other nodes reach this one at,
	// when it is not the one shoal connects to (several interfaces).
	AdvertiseAddr *string      `hcl:"advertise_addr,optional"`
	Engine        *engineBlock `hcl:"engine,block"`
	Remain        hcl.Body     `hcl:",remain"` // driver blocks

	DefRange           hcl.Range `hcl:",def_range"`
	CountRange         hcl.Range `hcl:"count,attr_value_range"`
	RoleRange          hcl.Range `hcl:"role,attr_value_range"`
	DriverRange        hcl.Range `hcl:"driver,attr_value_range"`
	HostnameRange      hcl.Range `hcl:"hostname,attr_value_range"`
	DockerUserRange    hcl.Range `hcl:"docker_user,attr_value_range"`
	LabelsRange        hcl.Range `hcl:"labels,attr_value_range"`
	AvailabilityRange  hcl.Range `hcl:"availability,attr_value_range"`
	AdvertiseAddrRange hcl.Range `hcl:"advertise_addr,attr_value_range"`

	// Filled by the stages after gohcl, in this order.
	drivers  driverBlocks // decode
	machines []Node       // fillDefaults: the count machines of the block
	found    found        // lookOutside
}

type swarmBlock struct {
	Autolock    *bool `hcl:"autolock,optional"`
	AutoUnlock  *bool `hcl:"auto_unlock,optional"`
	ForceRejoin *bool `hcl:"force_rejoin,optional"`
	// MaxUnavailable is how many workers a roll takes down at once.
	MaxUnavailable *int `hcl:"max_unavailable,optional"`

	// Set when the swarm is made (swarm init), never after.
	DataPathPort    *int     `hcl:"data_path_port,optional"`
	DefaultAddrPool []string `hcl:"default_addr_pool,optional"`
	OverlayMTU      *int     `hcl:"overlay_mtu,optional"`

	MaxUnavailableRange  hcl.Range `hcl:"max_unavailable,attr_value_range"`
	DataPathPortRange    hcl.Range `hcl:"data_path_port,attr_value_range"`
	DefaultAddrPoolRange hcl.Range `hcl:"default_addr_pool,attr_value_range"`
	OverlayMTURange      hcl.Range `hcl:"overlay_mtu,attr_value_range"`
}

type registryBlock struct {
	Enabled *bool   `hcl:"enabled,optional"`
	Node    *string `hcl:"node,optional"`
	Port    *int    `hcl:"port,optional"`
	Image   *string `hcl:"image,optional"`
	Path    *string `hcl:"path,optional"`

	NodeRange  hcl.Range `hcl:"node,attr_value_range"`
	PortRange  hcl.Range `hcl:"port,attr_value_range"`
	ImageRange hcl.Range `hcl:"image,attr_value_range"`
	PathRange  hcl.Range `hcl:"path,attr_value_range"`
}

// driverBlocks are the driver blocks (docker { ... }, ssh { ... }) of a
// machine or of the defaults, decoded through the driver registry: the
// drivers' config types are theirs, so the ranges are kept beside them.
type driverBlocks struct {
	// configs are the decoded configs by driver name: a machine's are
	// its blocks on top of the defaults' (gohcl sets only what a body
	// says).
	configs map[string]any
	blocks  []driverBlock
	// diags are said by validate, after the block's own settings and
	// only when its driver is known, as they always were.
	diags hcl.Diagnostics
}

// driverBlock is one driver block as written.
type driverBlock struct {
	spec     *Driver
	typ      string // the driver's name or one of its aliases
	defRange hcl.Range
	attrs    hcl.Attributes // what it sets, where
}

// valueRange is where the first block of driver spec sets attribute name.
func (d driverBlocks) valueRange(spec *Driver, name string) (hcl.Range, bool) {
	for _, b := range d.blocks {
		if b.spec == spec {
			if a, ok := b.attrs[name]; ok {
				return a.Expr.Range(), true
			}
		}
	}
	return hcl.Range{}, false
}

// decode reads the file's body, its variables already known to ctx, into
// the schema, and the driver blocks into the configs of the drivers of reg.
// Only errors of the schema itself stop here; the rest is kept for
// validate, to be said in the file's order of checks.
func decode(body hcl.Body, ctx *hcl.EvalContext, reg Drivers) (*file, hcl.Diagnostics) {
	raw := &file{}
	diags := gohcl.DecodeBody(body, ctx, raw)
	if diags.HasErrors() {
		return nil, diags
	}
	_, d := raw.Remain.Content(&hcl.BodySchema{})
	raw.unknown = append(raw.unknown, d...)
	_, d = raw.Cluster.Remain.Content(&hcl.BodySchema{})
	raw.unknown = append(raw.unknown, d...)
	var defaults map[string]any
	if raw.Defaults != nil {
		raw.Defaults.drivers = decodeDrivers(raw.Defaults.Remain, ctx, reg, nil)
		defaults = raw.Defaults.drivers.configs
	}
	for i := range raw.Machines {
		raw.Machines[i].drivers = decodeDrivers(raw.Machines[i].Remain, ctx, reg, defaults)
	}
	return raw, diags
}

// decodeDrivers decodes the driver blocks of body, each on a copy of the
// config of its driver in defaults if there is one.
func decodeDrivers(body hcl.Body, ctx *hcl.EvalContext, reg Drivers, defaults map[string]any) driverBlocks {
	schema := &hcl.BodySchema{}
	for _, spec := range reg.All() {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: spec.Name})
		for _, a := range spec.Aliases {
			schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: a})
		}
	}
	content, diags := body.Content(schema)
	out := driverBlocks{configs: map[string]any{}, diags: diags}
	for _, b := range content.Blocks {
		spec, err := reg.Get(b.Type)
		if err != nil {
			continue
		}
		cfg, ok := out.configs[spec.Name]
		if !ok {
			if base, ok := defaults[spec.Name]; ok {
				cfg = cloneConfig(spec, base)
			} else {
				cfg = spec.NewConfig()
			}
			out.configs[spec.Name] = cfg
		}
		out.diags = append(out.diags, gohcl.DecodeBody(b.Body, ctx, cfg)...)
		// DecodeBody says what is wrong with the body; this only keeps
		// the attributes it set, for where they are and what they
		// refer to.
		attrSchema, _ := gohcl.ImpliedBodySchema(cfg)
		set, _, _ := b.Body.PartialContent(attrSchema)
		out.blocks = append(out.blocks, driverBlock{spec: spec, typ: b.Type, defRange: b.DefRange, attrs: set.Attributes})
	}
	return out
}

// driverValue is where the defaults' block of driver spec sets attribute
// name; none when there are no defaults.
func (d *defaultsBlock) driverValue(spec *Driver, name string) (hcl.Range, bool) {
	if d == nil {
		return hcl.Range{}, false
	}
	return d.drivers.valueRange(spec, name)
}
