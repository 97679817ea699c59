package clusterfile

import (
	"github.com/shoal-dev/shoal/internal/store"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/drivers/docker"
	"github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/drivers/virtualbox"
)

// writeFile writes a cluster file into a temp folder and returns its path.
func writeFile(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, src string, opts Options) (*Spec, hcl.Diagnostics, string) {
	t.Helper()
	path := writeFile(t, src)
	spec, diags := Load(path, opts, allDrivers())
	return spec, diags, path
}

// mustLoad loads src and fails on any error diagnostic.
func mustLoad(t *testing.T, src string, opts Options) *Spec {
	t.Helper()
	spec, diags, _ := load(t, src, opts)
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags.Error())
	}
	if spec == nil {
		t.Fatal("Load returned no spec and no error")
	}
	return spec
}

// wantError loads src, wants an error diagnostic whose summary holds
// summary, and returns it.
func wantError(t *testing.T, src string, opts Options, summary string) *hcl.Diagnostic {
	t.Helper()
	spec, diags, path := load(t, src, opts)
	if !diags.HasErrors() {
		t.Fatalf("Load succeeded, want an error %q", summary)
	}
	if spec != nil {
		t.Errorf("Load returned a spec along with errors")
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError && strings.Contains(d.Summary, summary) {
			if d.Subject != nil && d.Subject.Filename != path {
				t.Errorf("%q: diagnostic file %q, want %q", summary, d.Subject.Filename, path)
			}
			return d
		}
	}
	t.Fatalf("no error %q in %s", summary, diags.Error())
	return nil
}

// wantLine checks that a diagnostic points at a line.
func wantLine(t *testing.T, d *hcl.Diagnostic, line int) {
	t.Helper()
	if d.Subject == nil {
		t.Errorf("%s: no location, want line %d", d.Summary, line)
		return
	}
	if d.Subject.Start.Line != line {
		t.Errorf("%s: at line %d, want line %d (%s)", d.Summary, d.Subject.Start.Line, line, d.Detail)
	}
}

func machineNames(s *Spec) []string { return Names(s.Machines) }

func byName(t *testing.T, s *Spec, name string) Node {
	t.Helper()
	for _, m := range s.Machines {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no machine %q in %v", name, machineNames(s))
	return Node{}
}

func dockerCfg(t *testing.T, m Node) *docker.Config {
	t.Helper()
	c, ok := m.DriverConfig.(*docker.Config)
	if !ok {
		t.Fatalf("%s: DriverConfig is %T, want *docker.Config", m.Name, m.DriverConfig)
	}
	return c
}

func TestLoadCountAndDefaults(t *testing.T) {
	spec := mustLoad(t, `
cluster "lab" {}

machine "master" {
  role   = "manager"
  labels = { zone = "a" }
}

machine "slave" {
  count = 3
  role  = "worker"
}

machine "web" {
  count    = 2
  hostname = "www"
}
`, Options{})
	if spec.Name != "lab" {
		t.Errorf("Name = %q", spec.Name)
	}
	want := []string{"master", "slave-1", "slave-2", "slave-3", "web-1", "web-2"}
	if got := machineNames(spec); !reflect.DeepEqual(got, want) {
		t.Fatalf("machines = %v, want %v", got, want)
	}
	hosts := map[string]string{"master": "master", "slave-1": "slave-1", "slave-3": "slave-3", "web-1": "www-1", "web-2": "www-2"}
	for n, h := range hosts {
		if got := byName(t, spec, n).Hostname; got != h {
			t.Errorf("%s: hostname %q, want %q", n, got, h)
		}
	}
	m := byName(t, spec, "master")
	if m.Role != "manager" || m.Driver != "docker" || !reflect.DeepEqual(m.Labels, map[string]string{"zone": "a"}) {
		t.Errorf("master = %+v", m)
	}
	s := byName(t, spec, "slave-2")
	if s.Role != "worker" {
		t.Errorf("slave-2 role %q", s.Role)
	}
	if w := byName(t, spec, "web-1"); w.Role != "worker" {
		t.Errorf("default role = %q, want worker", w.Role)
	}
	// The default driver is docker with its defaults.
	c := dockerCfg(t, s)
	if c.Image != docker.DefaultImage || c.Network != "shoal" {
		t.Errorf("default docker config = %+v", c)
	}
	// The default engine.
	if s.Engine.Install != "auto" || !s.Engine.TLS {
		t.Errorf("default engine = %+v, want install auto, TLS on", s.Engine)
	}
	if got := spec.Managers(); len(got) != 1 || got[0].Name != "master" {
		t.Errorf("Managers = %v", Names(got))
	}
	if len(spec.Warnings) != 0 {
		t.Errorf("warnings: %s", spec.Warnings.Error())
	}
	if spec.Files[spec.File] == nil {
		t.Errorf("Files does not hold the cluster file %q", spec.File)
	}
	// Ranges point at each machine's block.
	if l := byName(t, spec, "slave-2").Range.Start.Line; l != 9 {
		t.Errorf("slave-2 range at line %d, want 9", l)
	}
}

func TestLoadCountOneKeepsSuffix(t *testing.T) {
	spec := mustLoad(t, `
cluster "c" {}
machine "m" {
  count = 1
  role  = "manager"
}
`, Options{})
	if got := machineNames(spec); !reflect.DeepEqual(got, []string{"m-1"}) {
		t.Errorf("count = 1: machines %v, want [m-1]", got)
	}
}

func TestLoadDriverDefaultsMerged(t *testing.T) {
	spec := mustLoad(t, `
cluster "lab" {}

defaults {
  docker {
    image = "x"
  }
}

machine "a" {
  role = "manager"
  docker {
    network = "n"
  }
}

machine "b" {
  docker {
    image = "y"
  }
}

machine "c" {}
`, Options{})
	a := dockerCfg(t, byName(t, spec, "a"))
	if a.Image != "x" || a.Network != "n" {
		t.Errorf("a: %+v, want image x (defaults) and network n (its block)", a)
	}
	b := dockerCfg(t, byName(t, spec, "b"))
	if b.Image != "y" || b.Network != "shoal" {
		t.Errorf("b: %+v, want image y (its block), network shoal (driver default)", b)
	}
	c := dockerCfg(t, byName(t, spec, "c"))
	if c.Image != "x" || c.Network != "shoal" {
		t.Errorf("c: %+v, want image x, network shoal", c)
	}
	// Machines do not share a config.
	a.Image = "changed"
	if c.Image != "x" {
		t.Error("machines share their driver config")
	}
}

func TestLoadDefaultsDriverAndOtherDrivers(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := mustLoad(t, `
cluster "lab" {}

defaults {
  driver      = "virtualbox"
  docker_user = "ops"
  virtualbox {
    image  = "/var/lib/shoal/images/debian-12.qcow2"
    cpus   = 2
    memory = 2048
  }
  ssh {
    user = "hadoop"
  }
}

machine "master" {
  role = "manager"
  virtualbox {
    memory = 4096
  }
}

machine "edge" {
  driver      = "generic"
  docker_user = "edge"
  generic {
    host = "192.168.56.104"
    key  = "`+key+`"
  }
}
`, Options{})
	m := byName(t, spec, "master")
	vb, ok := m.DriverConfig.(*virtualbox.Config)
	if !ok {
		t.Fatalf("master DriverConfig %T", m.DriverConfig)
	}
	if m.Driver != "virtualbox" || vb.CPUs != 2 || vb.Memory != 4096 || vb.Image != "/var/lib/shoal/images/debian-12.qcow2" {
		t.Errorf("master: driver %s config %+v, want virtualbox, the image, cpus 2 memory 4096", m.Driver, vb)
	}
	if m.DockerUser != "ops" {
		t.Errorf("master docker user %q, want ops (defaults)", m.DockerUser)
	}
	e := byName(t, spec, "edge")
	sc, ok := e.DriverConfig.(*ssh.Config)
	if !ok {
		t.Fatalf("edge DriverConfig %T", e.DriverConfig)
	}
	if e.Driver != "ssh" {
		t.Errorf("alias generic: driver %q, want ssh", e.Driver)
	}
	want := ssh.Config{Host: "192.168.56.104", Port: 22, User: "hadoop", Key: key}
	if *sc != want {
		t.Errorf("edge: %+v, want %+v", *sc, want)
	}
	if e.DockerUser != "edge" {
		t.Errorf("edge docker user %q", e.DockerUser)
	}
}

func TestLoadEngineMerge(t *testing.T) {
	spec := mustLoad(t, `
cluster "lab" {}

defaults {
  engine {
    install             = "repo"
    version             = "24.0.9"
    repo_url            = "https://mirrors.example/docker-ce"
    os_mirror           = "https://vault.example/centos"
    insecure_registries = ["a:5000"]
    labels              = ["env=lab"]
  }
}

machine "m" {
  role = "manager"
  engine {
    replace_conflicting = true
    version             = "25.0.1"
    insecure_registries = ["b:5000"]
    registry_mirrors    = ["https://mirror"]
    tls                 = false
  }
}

machine "w" {}
`, Options{})
	m := byName(t, spec, "m").Engine
	want := store.Engine{
		Install: "repo", Version: "25.0.1", RepoURL: "https://mirrors.example/docker-ce",
		OSMirror: "https://vault.example/centos", ReplaceConflicting: true,
		InsecureRegistries: []string{"a:5000", "b:5000"}, RegistryMirrors: []string{"https://mirror"},
		Labels: []string{"env=lab"}, TLS: false,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("m engine = %+v\nwant %+v", m, want)
	}
	w := byName(t, spec, "w").Engine
	if w.Version != "24.0.9" || w.Install != "repo" || !w.TLS || w.OSMirror != "https://vault.example/centos" || w.ReplaceConflicting || !reflect.DeepEqual(w.InsecureRegistries, []string{"a:5000"}) {
		t.Errorf("w engine = %+v, want the defaults with TLS on", w)
	}
}

func TestLoadVariables(t *testing.T) {
	src := `
cluster "lab" {}

variable "workers" {
  default = 2
}

variable "image" {
  default = "shoal/node:bookworm"
}

variable "prefix" {}

defaults {
  docker {
    image = var.image
  }
}

machine "m" {
  role     = "manager"
  hostname = "${var.prefix}-m"
}

machine "w" {
  count = var.workers
}
`
	spec := mustLoad(t, src, Options{Vars: []string{"prefix=lab"}})
	if got := machineNames(spec); !reflect.DeepEqual(got, []string{"m", "w-1", "w-2"}) {
		t.Errorf("machines = %v", got)
	}
	if h := byName(t, spec, "m").Hostname; h != "lab-m" {
		t.Errorf("hostname = %q, want lab-m", h)
	}
	if c := dockerCfg(t, byName(t, spec, "w-1")); c.Image != "shoal/node:bookworm" {
		t.Errorf("image = %q", c.Image)
	}

	// --var overrides a default, converted to the default's type.
	spec = mustLoad(t, src, Options{Vars: []string{"prefix=p", "workers=4", "image=other:1"}})
	if got := machineNames(spec); len(got) != 5 || got[4] != "w-4" {
		t.Errorf("--var workers=4: machines %v", got)
	}
	if c := dockerCfg(t, byName(t, spec, "w-4")); c.Image != "other:1" {
		t.Errorf("--var image: %q", c.Image)
	}
	// A value with '=' in it keeps everything after the first '='.
	spec = mustLoad(t, src, Options{Vars: []string{"prefix=p", "image=reg:5000/img=x"}})
	if c := dockerCfg(t, byName(t, spec, "m")); c.Image != "reg:5000/img=x" {
		t.Errorf("--var with '=' in the value: %q", c.Image)
	}

	// --var-file.
	vf := filepath.Join(t.TempDir(), "lab.vars.hcl")
	if err := os.WriteFile(vf, []byte("workers = 3\nprefix = upper(\"ab\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec = mustLoad(t, src, Options{VarFiles: []string{vf}})
	if got := machineNames(spec); len(got) != 4 {
		t.Errorf("--var-file workers = 3: machines %v", got)
	}
	if h := byName(t, spec, "m").Hostname; h != "AB-m" {
		t.Errorf("--var-file prefix: hostname %q", h)
	}
	// --var wins over --var-file.
	spec = mustLoad(t, src, Options{VarFiles: []string{vf}, Vars: []string{"workers=1"}})
	if got := machineNames(spec); len(got) != 2 {
		t.Errorf("--var after --var-file: machines %v", got)
	}

	// A variable without a value.
	d := wantError(t, src, Options{}, "Variable has no value")
	if !strings.Contains(d.Detail, "prefix") {
		t.Errorf("detail %q does not name the variable", d.Detail)
	}
	// An undeclared variable.
	d = wantError(t, src, Options{Vars: []string{"prefix=p", "nope=1"}}, "Undeclared variable")
	if !strings.Contains(d.Detail, "nope") {
		t.Errorf("detail %q does not name the variable", d.Detail)
	}
	// An undeclared variable in a var file points at its line.
	vf2 := filepath.Join(t.TempDir(), "bad.vars.hcl")
	if err := os.WriteFile(vf2, []byte("prefix = \"p\"\nnope = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := Load(writeFile(t, src), Options{VarFiles: []string{vf2}}, allDrivers())
	found := false
	for _, d := range diags {
		if d.Summary == "Undeclared variable" && d.Subject != nil && d.Subject.Filename == vf2 && d.Subject.Start.Line == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("undeclared variable in a var file: want %s:2, got %s", vf2, diags.Error())
	}
	// A --var that is not name=value.
	wantError(t, src, Options{Vars: []string{"prefix=p", "workers"}}, "Invalid --var")
	// A --var that does not convert to the default's type.
	wantError(t, src, Options{Vars: []string{"prefix=p", "workers=many"}}, "Invalid variable value")
	// A missing var file.
	if _, diags := Load(writeFile(t, src), Options{VarFiles: []string{filepath.Join(t.TempDir(), "missing.hcl")}}, allDrivers()); !diags.HasErrors() {
		t.Error("a missing --var-file is not an error")
	}
}

func TestLoadBoolAndListVariables(t *testing.T) {
	src := `
cluster "lab" {}
variable "autolock" {
  default = false
}
variable "mirrors" {
  default = ["https://a"]
}
swarm {
  autolock = var.autolock
}
machine "m" {
  role = "manager"
  engine {
    registry_mirrors = var.mirrors
  }
}
`
	spec := mustLoad(t, src, Options{Vars: []string{"autolock=true"}})
	if !spec.Autolock {
		t.Error("--var autolock=true: Autolock = false")
	}
	if got := byName(t, spec, "m").Engine.RegistryMirrors; !reflect.DeepEqual(got, []string{"https://a"}) {
		t.Errorf("mirrors = %v", got)
	}
	wantError(t, src, Options{Vars: []string{"autolock=maybe"}}, "Invalid variable value")
}

func TestLoadFunctions(t *testing.T) {
	spec := mustLoad(t, `
cluster "lab" {}

variable "zones" {
  default = ["a", "b", "c"]
}

defaults {
  docker {
    image   = format("%s:%s", "shoal/node", lower("BOOKWORM"))
    network = join("-", concat(["net"], ["x"]))
  }
}

machine "m" {
  role     = "manager"
  hostname = upper("m")
  labels   = {
    zone  = element(var.zones, 1)
    count = tostring(length(var.zones))
    first = coalesce(null, "z")
  }
}

machine "w" {
  count = length(var.zones) - 1
}
`, Options{})
	m := byName(t, spec, "m")
	if c := dockerCfg(t, m); c.Image != "shoal/node:bookworm" || c.Network != "net-x" {
		t.Errorf("docker config = %+v", c)
	}
	if m.Hostname != "M" {
		t.Errorf("hostname = %q", m.Hostname)
	}
	want := map[string]string{"zone": "b", "count": "3", "first": "z"}
	if !reflect.DeepEqual(m.Labels, want) {
		t.Errorf("labels = %v, want %v", m.Labels, want)
	}
	if got := machineNames(spec); len(got) != 3 {
		t.Errorf("count = length(...) - 1: machines %v", got)
	}
}

func TestLoadUnknownFunction(t *testing.T) {
	wantError(t, `
cluster "lab" {}
machine "m" {
  role = "manager"
  hostname = nosuch("x")
}
`, Options{}, "function")
}

func TestLoadErrorsAtTheirLine(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		summary string
		line    int
	}{
		{"duplicate name", `cluster "c" {}
machine "a" {
  role = "manager"
}
machine "a" {
}
`, "Duplicate machine name", 5},
		{"duplicate after count", `cluster "c" {}
machine "a" {
  role  = "manager"
  count = 2
}

machine "a-2" {}
`, "Duplicate machine name", 7},
		{"no manager", `cluster "c" {}

machine "a" {
  role = "worker"
}
`, "No manager", 3},
		{"bad role", `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "a" {
  count = 2

  role  = "boss"
}
`, "Invalid role", 8},
		{"count zero", `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "a" {
  count = 0
}
`, "Invalid count", 6},
		{"count too big", `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "a" {
  role  = "worker"
  count = 101
}
`, "Invalid count", 7},
		{"unknown driver", `cluster "c" {}
machine "m" {
  role   = "manager"
  driver = "hyperv"
}
`, "Unknown driver", 4},
		{"ssh without host", `cluster "c" {}
machine "m" {
  role = "manager"
}

machine "edge" {
  driver = "ssh"
  ssh {
    user = "root"
  }
}
`, "Invalid ssh settings", 6},
		{"ssh invalid address", `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "edge" {
  driver = "ssh"
  ssh {
    host = "not a host!"
  }
}
`, "Invalid address", 5},
		{"unknown registry node", `cluster "c" {}
machine "m" {
  role = "manager"
}

registry {
  port = 5000
  node = "nope"
}
`, "Unknown registry node", 8},
		{"registry port", `cluster "c" {}
machine "m" {
  role = "manager"
}
registry {
  port = 70000
}
`, "Invalid registry port", 6},
		{"registry path", `cluster "c" {}
machine "m" {
  role = "manager"
}
registry {
  path = "var/lib/registry"
}
`, "Invalid registry path", 6},
		{"availability", `cluster "c" {}
machine "m" {
  role         = "manager"
  availability = "sleepy"
}
`, "Invalid availability", 4},
		{"hostname", `cluster "c" {}
machine "m" {
  role     = "manager"
  hostname = "bad_host"
}
`, "Invalid hostname", 2},
		{"machine name", `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "bad_name" {}
`, "Invalid machine name", 5},
		{"label key", `cluster "c" {}
machine "m" {
  role   = "manager"
  labels = { "a b" = "x" }
}
`, "Invalid label", 2},
		{"image archive", `cluster "c" {}
machine "m" {
  role           = "manager"
  image_archives = ["/nonexistent/images.tar"]
}
`, "Image archive not found", 2},
		{"unknown attribute", `cluster "c" {}
machine "m" {
  role  = "manager"
  colour = "red"
}
`, "Unsupported argument", 4},
		{"unknown attribute in a driver block", `cluster "c" {}
machine "m" {
  role = "manager"
  docker {
    imagee = "x"
  }
}
`, "Unsupported argument", 5},
		{"wrong type", `cluster "c" {}
machine "m" {
  role  = "manager"
  count = "three"
}
`, "Unsuitable value type", 4},
		{"syntax", `cluster "c" {}
machine "m" {
  role = "manager"
  labels = {
}
`, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.summary == "" {
				_, diags, _ := load(t, c.src, Options{})
				if !diags.HasErrors() {
					t.Fatal("a syntax error loads")
				}
				if diags[0].Subject == nil {
					t.Error("syntax error without a location")
				}
				return
			}
			d := wantError(t, c.src, Options{}, c.summary)
			wantLine(t, d, c.line)
		})
	}
}

func TestLoadNoMachines(t *testing.T) {
	wantError(t, `cluster "c" {}`, Options{}, "No machines")
}

func TestLoadNoCluster(t *testing.T) {
	if _, diags, _ := load(t, `machine "m" { role = "manager" }`, Options{}); !diags.HasErrors() {
		t.Error("a file without a cluster block loads")
	}
}

func TestLoadInvalidClusterName(t *testing.T) {
	wantError(t, `cluster "my lab" {}
machine "m" { role = "manager" }
`, Options{}, "Invalid cluster name")
}

func TestLoadMissingFile(t *testing.T) {
	spec, diags := Load(filepath.Join(t.TempDir(), "nope.hcl"), Options{}, allDrivers())
	if spec != nil || !diags.HasErrors() {
		t.Fatal("Load of a missing file did not fail")
	}
}

func TestLoadEvenManagersIsAWarning(t *testing.T) {
	spec, diags, _ := load(t, `cluster "c" {}
machine "m" {
  count = 2
  role  = "manager"
}
machine "w" {}
`, Options{})
	if diags.HasErrors() {
		t.Fatalf("two managers is an error: %s", diags.Error())
	}
	if spec == nil {
		t.Fatal("no spec")
	}
	if len(spec.Warnings) != 1 || spec.Warnings[0].Severity != hcl.DiagWarning || !strings.Contains(spec.Warnings[0].Summary, "Even number of managers") {
		t.Fatalf("warnings = %v", spec.Warnings)
	}
	wantLine(t, spec.Warnings[0], 2)
	// Three managers: no warning.
	spec = mustLoad(t, `cluster "c" {}
machine "m" {
  count = 3
  role  = "manager"
}
`, Options{})
	if len(spec.Warnings) != 0 {
		t.Errorf("3 managers: warnings %s", spec.Warnings.Error())
	}
}

func TestLoadRegistry(t *testing.T) {
	spec := mustLoad(t, `cluster "c" {}
machine "w" {}
machine "boss" {
  count = 3
  role  = "manager"
}
`, Options{})
	want := Registry{Enabled: true, Node: "boss-1", Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}
	if spec.Registry != want {
		t.Errorf("registry = %+v, want %+v (defaults, on the first manager)", spec.Registry, want)
	}
	if spec.Autolock {
		t.Error("Autolock on by default")
	}

	spec = mustLoad(t, `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "w" {
  count = 2
}
swarm {
  autolock = true
}
registry {
  node  = "w-2"
  port  = 5050
  image = "registry:2.8"
  path  = "/srv/registry"
}
`, Options{})
	want = Registry{Enabled: true, Node: "w-2", Port: 5050, Image: "registry:2.8", Path: "/srv/registry"}
	if spec.Registry != want {
		t.Errorf("registry = %+v, want %+v", spec.Registry, want)
	}
	if !spec.Autolock {
		t.Error("autolock = true not read")
	}

	spec = mustLoad(t, `cluster "c" {}
machine "m" {
  role = "manager"
}
registry {
  enabled = false
}
`, Options{})
	if spec.Registry.Enabled {
		t.Error("registry enabled = false not read")
	}
}

func TestLoadImageArchives(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "images.tar")
	if err := os.WriteFile(archive, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := mustLoad(t, `cluster "c" {}
defaults {
  image_archives = ["`+archive+`"]
}
machine "m" {
  role = "manager"
}
machine "w" {
  image_archives = []
}
`, Options{})
	if got := byName(t, spec, "m").ImageArchives; !reflect.DeepEqual(got, []string{archive}) {
		t.Errorf("m archives = %v", got)
	}
	if got := byName(t, spec, "w").ImageArchives; len(got) != 0 {
		t.Errorf("w archives = %v, want none (its own empty list)", got)
	}
}

func TestLoadDuplicateNameNamesTheFirst(t *testing.T) {
	d := wantError(t, `cluster "c" {}
machine "a" {
  role = "manager"
}
machine "a" {}
`, Options{}, "Duplicate machine name")
	if !strings.Contains(d.Detail, ":2,") {
		t.Errorf("detail %q does not say where the first one is", d.Detail)
	}
}

// A typo in a top-level block name must not be ignored: a misspelled
// registry block would deploy the registry the user meant to turn off.
func TestLoadUnknownTopLevelBlock(t *testing.T) {
	for name, src := range map[string]string{
		"block": `cluster "c" {}
machine "m" {
  role = "manager"
}
regsitry {
  enabled = false
}
`,
		"attribute": `cluster "c" {}
machine "m" {
  role = "manager"
}
autolock = true
`,
		"labelled block": `cluster "c" {}
machine "m" {
  role = "manager"
}
machin "w" {}
`,
	} {
		t.Run(name, func(t *testing.T) {
			_, diags, _ := load(t, src, Options{})
			if !diags.HasErrors() {
				t.Errorf("a file with an unknown top-level %s loads without an error", name)
			}
		})
	}
}

// A driver block for a driver the machine does not use is a mistake: an
// ssh block without driver = "ssh" would make a docker container instead
// of adopting the host.
func TestLoadDriverBlockOfAnotherDriver(t *testing.T) {
	_, diags, _ := load(t, `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "edge" {
  ssh {
    host = "192.168.56.104"
  }
}
`, Options{})
	if !diags.HasErrors() {
		t.Error("machine edge (driver docker) with an ssh block loads without an error: the block is silently ignored")
	}
}

// Every machine of a cluster gets its own hostname: /etc/hosts, the
// registry's placement (node.hostname==...) and peer SSH rely on it.
func TestLoadDuplicateHostname(t *testing.T) {
	_, diags, _ := load(t, `cluster "c" {}
machine "a" {
  role     = "manager"
  hostname = "node"
}
machine "b" {
  hostname = "node"
}
`, Options{})
	if !diags.HasErrors() {
		t.Error("two machines with hostname \"node\" load without an error")
	}
}

// A mistake in a machine block with count = N is reported once, not N times.
func TestLoadCountedDiagnosticsOnce(t *testing.T) {
	_, diags, _ := load(t, `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "w" {
  count = 3
  docker {
    imagee = "x"
  }
}
`, Options{})
	n := 0
	for _, d := range diags {
		if d.Summary == "Unsupported argument" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("got %d \"Unsupported argument\" diagnostics for one typo, want 1:\n%s", n, diags.Error())
	}
}

// An ssh machine without a host is one mistake: one error.
func TestLoadSSHWithoutHostOneError(t *testing.T) {
	_, diags, _ := load(t, `cluster "c" {}
machine "m" {
  role = "manager"
}
machine "edge" {
  driver = "ssh"
}
`, Options{})
	if !diags.HasErrors() {
		t.Fatal("ssh machine without host loads")
	}
	errs := diags.Errs()
	if len(errs) != 1 {
		t.Errorf("got %d errors for a missing ssh host, want 1:\n%s", len(errs), diags.Error())
	}
}

// HCL users declare variables as Terraform and Packer do, with a type.
func TestLoadVariableWithType(t *testing.T) {
	spec, diags, _ := load(t, `cluster "c" {}
variable "workers" {
  type        = number
  default     = 1
  description = "how many workers"
}
machine "m" {
  role = "manager"
}
machine "w" {
  count = var.workers
}
`, Options{Vars: []string{"workers=2"}})
	if diags.HasErrors() {
		t.Fatalf("a variable with type = number: %s", diags.Error())
	}
	if got := machineNames(spec); len(got) != 3 {
		t.Errorf("machines = %v", got)
	}
}

// Nothing is created when the file is invalid: an engine install mode that
// provisioning refuses must be refused by Load, before any host is made.
func TestLoadInvalidEngineInstall(t *testing.T) {
	for _, mode := range []string{"auto", "repo", "distro", "skip"} {
		mustLoad(t, `cluster "c" {}
machine "m" {
  role = "manager"
  engine {
    install = "`+mode+`"
  }
}
`, Options{})
	}
	_, diags, _ := load(t, `cluster "c" {}
machine "m" {
  role = "manager"
  engine {
    install = "bogus"
  }
}
`, Options{})
	if !diags.HasErrors() {
		t.Fatal(`engine install = "bogus" loads; provisioning fails on it only after the hosts were created`)
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			wantLine(t, d, 5)
			break
		}
	}
}

// An unknown driver in defaults is reported at the defaults' driver
// attribute, where the mistake is.
func TestLoadUnknownDefaultDriverLine(t *testing.T) {
	d := wantError(t, `cluster "c" {}
defaults {
  driver = "hyperv"
}
machine "m" {
  role = "manager"
}
`, Options{}, "Unknown driver")
	wantLine(t, d, 3)
}
