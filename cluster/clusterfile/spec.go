// Package clusterfile reads a cluster file (HCL) and checks it: variables,
// defaults and count made into one validated Spec, every error said at its
// place in the file. It knows no hosts: the drivers' settings are checked
// through what the caller hands in (Drivers).
package clusterfile

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Node is one machine of the cluster as the file wants it, after count and
// defaults: its place in the swarm, its driver and its setup.
type Node struct {
	Name         string
	Role         validate.Role
	Driver       string
	DriverConfig any // the driver's *Config
	// Setup is the machine's hostname, docker user and engine from the
	// file; the converger adds its swarm, cluster and keys and hands it to
	// the machine layer as it is.
	store.Setup
	Labels        map[string]string
	Availability  string
	ImageArchives []string
	Range         hcl.Range
	// AdvertiseAddr overrides the address shoal connected to for the
	// swarm, /etc/hosts and registry trust ("" keeps it).
	AdvertiseAddr string
}

// Registry is the cluster's registry service.
type Registry struct {
	Enabled bool
	Node    string
	Port    int
	Image   string
	Path    string
}

// Spec is a decoded, checked cluster file.
type Spec struct {
	Name     string
	File     string
	Machines []Node
	Registry Registry
	Autolock bool
	// AutoUnlock: up unlocks locked managers with the stored key.
	AutoUnlock bool
	// ForceRejoin lets nodes of another swarm leave it and join this one.
	ForceRejoin bool
	// MaxUnavailable is how many workers a roll (an engine change) drains
	// at once; managers go one at a time.
	MaxUnavailable int
	// DefaultAddrPool and DataPathPort are what a swarm made by this file
	// gets at init (empty, 0: Docker's 10.0.0.0/8 and 4789).
	DefaultAddrPool []string
	DataPathPort    int
	// OverlayMTU is the MTU of the ingress network a new swarm gets (0:
	// Docker's).
	OverlayMTU int
	// Stacks are deployed once the swarm is ready, in file order.
	Stacks []Stack
	// Warnings are diagnostics that do not stop the run.
	Warnings hcl.Diagnostics
	// Files are the parsed sources, for printing diagnostics.
	Files map[string]*hcl.File
	// Sensitive are the values of sensitive variables, to redact.
	Sensitive []string
	// SensitiveVars names the variables marked sensitive: their values
	// given with --var are never shown in the commands shoal prints.
	SensitiveVars map[string]bool
}

// Managers returns the manager machines in file order.
func (s *Spec) Managers() []Node {
	var out []Node
	for _, m := range s.Machines {
		if m.Role == validate.Manager {
			out = append(out, m)
		}
	}
	return out
}

// Options are the command line's inputs to a cluster file.
type Options struct {
	Vars     []string // k=v
	VarFiles []string
	// Env looks up SHOAL_VAR_<name> (os.LookupEnv); nil reads nothing.
	// --var-file and --var win over it, as Terraform's TF_VAR_.
	Env func(string) (string, bool)
}

// EnvVarPrefix names the environment variable of a cluster variable.
const EnvVarPrefix = "SHOAL_VAR_"

func functions() map[string]function.Function {
	return map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"upper": stdlib.UpperFunc, "lower": stdlib.LowerFunc, "trimspace": stdlib.TrimSpaceFunc, "replace": stdlib.ReplaceFunc,
		"format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc, "join": stdlib.JoinFunc, "split": stdlib.SplitFunc,
		"concat": stdlib.ConcatFunc, "length": stdlib.LengthFunc, "range": stdlib.RangeFunc, "contains": stdlib.ContainsFunc,
		"element": stdlib.ElementFunc, "keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc, "merge": stdlib.MergeFunc,
		"lookup": stdlib.LookupFunc, "coalesce": stdlib.CoalesceFunc, "distinct": stdlib.DistinctFunc, "flatten": stdlib.FlattenFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc, "regex": stdlib.RegexFunc,
		"substr": stdlib.SubstrFunc, "tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	}
}

// Load reads, decodes and checks a cluster file. Any error diagnostic means
// nothing may be created.
func Load(path string, opts Options, reg Drivers) (*Spec, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the cluster file", Detail: err.Error()}}
	}
	return LoadSource(src, path, opts, reg)
}

// LoadSource is Load on the content src of the file at path (relative
// image archives are found next to path).
func LoadSource(src []byte, path string, opts Options, reg Drivers) (*Spec, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	f, diags := parser.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	// Variables first: everything else may refer to them.
	varsOnly := &struct {
		Variables []variableBlock `hcl:"variable,block"`
		Remain    hcl.Body        `hcl:",remain"`
	}{}
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, varsOnly)...)
	if diags.HasErrors() {
		return nil, diags
	}
	vars, vdiags := variables(parser, varsOnly.Variables, opts)
	diags = append(diags, vdiags...)
	if diags.HasErrors() {
		return nil, diags
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: functions()}
	raw, ddiags := decode(f.Body, ctx, reg)
	diags = append(diags, ddiags...)
	if diags.HasErrors() {
		return nil, diags
	}
	spec, sdiags := build(raw, filepath.Dir(path), reg)
	diags = append(diags, sdiags...)
	sensitive := sensitiveVars(varsOnly.Variables)
	if ssh, err := reg.Get("ssh"); err == nil {
		diags = append(diags, secretWarnings(raw, ssh, sensitive)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	spec.File = path
	spec.Files = parser.Files()
	spec.Sensitive = sensitiveValues(varsOnly.Variables, vars)
	spec.SensitiveVars = sensitive
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			spec.Warnings = append(spec.Warnings, d)
		}
	}
	return spec, diags
}

// sensitiveVars names the variables marked sensitive.
func sensitiveVars(vars []variableBlock) map[string]bool {
	out := map[string]bool{}
	for _, v := range vars {
		if v.Sensitive {
			out[v.Name] = true
		}
	}
	return out
}

func variables(parser *hclparse.Parser, blocks []variableBlock, opts Options) (map[string]cty.Value, hcl.Diagnostics) {
	vs := &varSet{vals: map[string]cty.Value{}, declared: map[string]bool{}, types: map[string]cty.Type{}}
	vs.declare(blocks)
	// Later sources win: the environment, the --var-files in order, --var.
	if opts.Env != nil {
		for _, b := range blocks {
			if v, ok := opts.Env(EnvVarPrefix + b.Name); ok && vs.declared[b.Name] {
				vs.set(b.Name, cty.StringVal(v), nil)
			}
		}
	}
	for _, vf := range opts.VarFiles {
		vs.fromFile(parser, vf)
	}
	for _, kv := range opts.Vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid --var", Detail: fmt.Sprintf("%q: want name=value", kv)})
			continue
		}
		vs.set(k, cty.StringVal(v), nil)
	}
	for _, b := range blocks {
		if _, ok := vs.vals[b.Name]; !ok {
			vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Variable has no value",
				Detail: fmt.Sprintf("variable %q has no default: give it with --var %s=VALUE, --var-file or $%s%s", b.Name, b.Name, EnvVarPrefix, b.Name)})
		}
	}
	return vs.vals, vs.diags
}

// varSet gathers the variables' values from their sources.
type varSet struct {
	vals     map[string]cty.Value
	declared map[string]bool
	types    map[string]cty.Type
	diags    hcl.Diagnostics
}

// declare takes the variable blocks in: their types and defaults.
func (vs *varSet) declare(blocks []variableBlock) {
	first := map[string]hcl.Range{}
	for _, b := range blocks {
		// A second block of one name would silently win over the first.
		if vs.declared[b.Name] {
			prev := first[b.Name]
			vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("variable %q is declared twice (first at %s)", b.Name, prev.String()), Subject: b.DefRange.Ptr()})
			continue
		}
		first[b.Name] = b.DefRange
		vs.declared[b.Name] = true
		ty, d := b.typeOf()
		vs.diags = append(vs.diags, d...)
		if ty != cty.NilType {
			vs.types[b.Name] = ty
		}
		if b.Default.IsNull() {
			continue
		}
		v := b.Default
		if ty != cty.NilType {
			conv, err := convert.Convert(v, ty)
			if err != nil {
				vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default value",
					Detail: fmt.Sprintf("variable %q: %v", b.Name, err), Subject: b.Type.Range().Ptr()})
				continue
			}
			v = conv
		}
		vs.vals[b.Name] = v
	}
}

// set gives a declared variable a value, of its declared type (or its
// default's).
func (vs *varSet) set(name string, v cty.Value, rng *hcl.Range) {
	if !vs.declared[name] {
		vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
			Detail: fmt.Sprintf("%q is not declared: add a variable %q {} block to the cluster file", name, name), Subject: rng})
		return
	}
	want := vs.types[name]
	if old, ok := vs.vals[name]; ok && want == cty.NilType {
		want = old.Type()
	}
	if want != cty.NilType && want != cty.DynamicPseudoType && !v.Type().Equals(want) {
		// --var gives strings: make them the declared (or the default's) type.
		conv, err := convert.Convert(v, want)
		if err != nil {
			vs.diags = append(vs.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
				Detail: fmt.Sprintf("%s: %v", name, err), Subject: rng})
			return
		}
		v = conv
	}
	vs.vals[name] = v
}

// fromFile sets the variables a --var-file gives, in name order.
func (vs *varSet) fromFile(parser *hclparse.Parser, path string) {
	f, d := parser.ParseHCLFile(path)
	vs.diags = append(vs.diags, d...)
	if d.HasErrors() {
		return
	}
	attrs, d := f.Body.JustAttributes()
	vs.diags = append(vs.diags, d...)
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, d := attrs[n].Expr.Value(&hcl.EvalContext{Functions: functions()})
		vs.diags = append(vs.diags, d...)
		rng := attrs[n].Range
		vs.set(n, v, &rng)
	}
}

// sensitiveValues lists the string values of the variables marked
// sensitive (and the strings inside lists and maps of them).
func sensitiveValues(blocks []variableBlock, vals map[string]cty.Value) []string {
	var out []string
	var walk func(v cty.Value)
	walk = func(v cty.Value) {
		if v.IsNull() || !v.IsKnown() {
			return
		}
		switch {
		case v.Type() == cty.String:
			if s := v.AsString(); s != "" {
				out = append(out, s)
			}
		case v.CanIterateElements():
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				walk(e)
			}
		}
	}
	for _, b := range blocks {
		if b.Sensitive {
			if v, ok := vals[b.Name]; ok {
				walk(v)
			}
		}
	}
	return out
}
