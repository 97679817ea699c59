package clusterfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/internal/validate"
)

// inj is the root shell injection of issue 10 item 1.
const inj = "x; touch /tmp/pwned; echo x"

// TestLoadRefusesValuesThatReachAHost is issue 10 items 1 and 5: the
// injection (and other bad values) in every field that reaches a host is
// an error at its attribute's line.
func TestLoadRefusesValuesThatReachAHost(t *testing.T) {
	const head = "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n"
	cases := []struct {
		name    string
		body    string // inside machine "m", from line 4
		summary string
		line    int
	}{
		{"docker_user", `  docker_user = "` + inj + `"`, "Invalid docker_user", 4},
		{"docker_user machine account", `  docker_user = "x$"`, "Invalid docker_user", 4},
		{"hostname injection", `  hostname = "` + inj + `"`, "Invalid hostname", 2},
		{"hostname bad", `  hostname = "bad host!"`, "Invalid hostname", 2},
		{"hostname 64", `  hostname = "` + strings.Repeat("a", 64) + `"`, "Invalid hostname", 2},
		{"hostname over 253", `  hostname = "` + strings.Repeat("abcdefgh.", 30) + `x"`, "Invalid hostname", 2},
		{"engine version", "  engine {\n    version = \"24.0; id\"\n  }", "Invalid engine version", 5},
		{"engine repo_url", "  engine {\n    repo_url = \"https://x/$(touch /tmp/pwned)\"\n  }", "Invalid engine repo_url", 5},
		{"engine repo_url scheme", "  engine {\n    repo_url = \"file:///etc/passwd\"\n  }", "Invalid engine repo_url", 5},
		{"engine install", "  engine {\n    install = \"" + inj + "\"\n  }", "Invalid engine install", 5},
		{"engine os_mirror", "  engine {\n    os_mirror = \"https://vault/$(touch /tmp/pwned)\"\n  }", "Invalid engine os_mirror", 5},
		{"engine os_mirror scheme", "  engine {\n    os_mirror = \"ftp://vault.centos.org\"\n  }", "Invalid engine os_mirror", 5},
		{"engine mirror not a URL", "  engine {\n    registry_mirrors = [\"mirror.local\"]\n  }", "Invalid registry mirror", 5},
		{"engine mirror injection", "  engine {\n    registry_mirrors = [\"https://m/" + inj + "\"]\n  }", "Invalid registry mirror", 5},
		{"engine insecure registry", "  engine {\n    insecure_registries = [\"" + inj + "\"]\n  }", "Invalid insecure registry", 5},
		{"engine label", "  engine {\n    labels = [\"k=" + inj + "\"]\n  }", "Invalid engine label", 5},
		{"engine label without =", "  engine {\n    labels = [\"novalue\"]\n  }", "Invalid engine label", 5},
		{"label key", `  labels = { "` + inj + `" = "v" }`, "Invalid label", 2},
		{"label value", `  labels = { zone = "` + inj + `" }`, "Invalid label", 4},
		{"label value newline", `  labels = { zone = "a\nb" }`, "Invalid label", 4},
		{"availability", `  availability = "` + inj + `"`, "Invalid availability", 4},
		{"docker network", "  docker {\n    network = \"" + inj + "\"\n  }", "Invalid docker settings", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := wantError(t, head+c.body+"\n}\n", Options{}, c.summary)
			wantLine(t, d, c.line)
		})
	}
}

func TestLoadRefusesBadSSHSettings(t *testing.T) {
	src := func(ssh string) string {
		return "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\nmachine \"e\" {\n  driver = \"ssh\"\n  ssh {\n" + ssh + "\n  }\n}\n"
	}
	cases := []struct {
		name, ssh, summary string
		line               int
	}{
		{"user", "    host = \"127.0.0.1\"\n    user = \"" + inj + "\"", "Invalid ssh user", 9},
		{"user with ;", "    host = \"127.0.0.1\"\n    user = \"root;id\"", "Invalid ssh user", 9},
		{"host", "    host = \"" + inj + "\"", "Invalid address", 5},
		{"host option", "    host = \"-oProxyCommand=id\"", "Invalid address", 5},
		{"host key", "    host = \"127.0.0.1\"\n    host_key = \"MD5:aa:bb\"", "Invalid host key fingerprint", 9},
		{"host key injection", "    host = \"127.0.0.1\"\n    host_key = \"SHA256:" + inj + "\"", "Invalid host key fingerprint", 9},
		{"port", "    host = \"127.0.0.1\"\n    port = 0", "Invalid ssh port", 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := wantError(t, src(c.ssh), Options{}, c.summary)
			wantLine(t, d, c.line)
		})
	}
}

func TestLoadSSHSettingFromDefaultsAtItsLine(t *testing.T) {
	d := wantError(t, `cluster "c" {}
defaults {
  ssh {
    user = "a b"
  }
}
machine "m" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host = "127.0.0.1"
  }
}
`, Options{}, "Invalid ssh user")
	wantLine(t, d, 4)
}

func TestLoadSSHCountAboveOne(t *testing.T) {
	d := wantError(t, `cluster "c" {}
machine "m" {
  role   = "manager"
  driver = "ssh"
  count  = 2
  ssh {
    host = "127.0.0.1"
  }
}
`, Options{}, "Invalid count")
	wantLine(t, d, 5)
	if !strings.Contains(d.Detail, "ssh") {
		t.Errorf("detail %q does not say why", d.Detail)
	}
	// count = 1 adopts one host: fine.
	mustLoad(t, `cluster "c" {}
machine "m" {
  role   = "manager"
  driver = "ssh"
  count  = 1
  ssh {
    host = "127.0.0.1"
  }
}
`, Options{})
}

func TestLoadOneHostInTwoBlocks(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{`host = "127.0.0.1"`, `host = "127.0.0.1"`},
		{`host = "::1"`, `host = "0:0::1"`},
		{`host = "Node.Example"`, "host = \"node.example\"\n    port = 22"},
	} {
		d := wantError(t, `cluster "c" {}
machine "a" {
  role   = "manager"
  driver = "ssh"
  ssh {
    `+c.a+`
  }
}
machine "b" {
  driver = "ssh"
  ssh {
    `+c.b+`
  }
}
`, Options{}, "Same host in two machine blocks")
		wantLine(t, d, 12)
	}
	// The same address on another port is another host (port forwards).
	mustLoad(t, `cluster "c" {}
machine "a" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host = "127.0.0.1"
    port = 2201
  }
}
machine "b" {
  driver = "ssh"
  ssh {
    host = "127.0.0.1"
    port = 2202
  }
}
`, Options{})
}

func TestLoadDuplicateVariable(t *testing.T) {
	d := wantError(t, `cluster "c" {}
variable "u" {
  default = "root"
}
variable "u" {
  default = "`+inj+`"
}
machine "m" {
  role        = "manager"
  docker_user = var.u
}
`, Options{}, "Duplicate variable")
	wantLine(t, d, 5)
	if !strings.Contains(d.Detail, ":2,") {
		t.Errorf("detail %q does not name the first block", d.Detail)
	}
}

// TestLoadRefusesValuesFromVariables: a value given on the command line is
// checked as one written in the file, at the line that uses it; invalid
// UTF-8 in a label never reaches daemon.json (issue 10 item 12).
func TestLoadRefusesValuesFromVariables(t *testing.T) {
	src := `cluster "c" {}
variable "v" {
  default = "ok"
}
machine "m" {
  role        = "manager"
  docker_user = var.v
}
`
	d := wantError(t, src, Options{Vars: []string{"v=" + inj}}, "Invalid docker_user")
	wantLine(t, d, 7)

	src = `cluster "c" {}
variable "v" {
  default = "ok"
}
machine "m" {
  role = "manager"
  engine {
    labels = ["zone=${var.v}"]
  }
}
`
	mustLoad(t, src, Options{})
	d = wantError(t, src, Options{Vars: []string{"v=\xff\xfe"}}, "Invalid engine label")
	wantLine(t, d, 8)

	src = `cluster "c" {}
variable "v" {
  default = "ok"
}
machine "m" {
  role   = "manager"
  labels = { zone = var.v }
}
`
	mustLoad(t, src, Options{})
	d = wantError(t, src, Options{Vars: []string{"v=\xff"}}, "Invalid label")
	wantLine(t, d, 7)
}

func TestLoadRegistryImageAndPath(t *testing.T) {
	for _, c := range []struct{ attr, summary string }{
		{`image = "` + inj + `"`, "Invalid registry image"},
		{`path = "/var/lib/$(id)"`, "Invalid registry path"},
		{`path = "/var/../etc"`, "Invalid registry path"},
	} {
		d := wantError(t, "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\nregistry {\n  "+c.attr+"\n}\n", Options{}, c.summary)
		wantLine(t, d, 6)
	}
}

// TestLoadAcceptsWhatTheChecksAllow keeps the checks from refusing real
// files: every kind of value, valid.
func TestLoadAcceptsWhatTheChecksAllow(t *testing.T) {
	spec := mustLoad(t, `cluster "c" {}
defaults {
  docker_user = "deploy"
  engine {
    install             = "repo"
    version             = "24.0.9"
    repo_url            = "https://mirrors.example.com/docker-ce/"
    registry_mirrors    = ["https://mirror.gcr.io", "http://10.0.0.5:5000"]
    insecure_registries = ["registry.lab:5000", "10.0.0.0/8"]
    labels              = ["com.example.zone=eu west", "tier=1"]
  }
}
machine "m" {
  role         = "manager"
  hostname     = "m1.lab.example"
  availability = "drain"
  labels       = { "com.example.disk" = "ssd", zone = "日本" }
}
machine "e" {
  driver = "ssh"
  ssh {
    host     = "localhost"
    user     = "ubuntu"
    host_key = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
  }
}
registry {
  image = "localhost:5000/registry:2"
  path  = "/srv/registry"
}
`, Options{})
	if len(spec.Machines) != 2 {
		t.Fatalf("machines: %v", machineNames(spec))
	}
}

// FuzzLoad: the loader never panics; what it refuses comes as error
// diagnostics, and what it accepts holds only values that may reach a
// host.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  docker_user = \"" + inj + "\"\n}\n",
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  hostname = \"bad host!\"\n}\n",
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  hostname = \"" + strings.Repeat("a", 254) + "\"\n}\n",
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  engine {\n    version = \"1; id\"\n    repo_url = \"x\"\n    registry_mirrors = [\"nope\"]\n  }\n}\n",
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  labels = { k = \"\xff\" }\n}\n",
		"cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n  driver = \"ssh\"\n  count = 3\n  ssh {\n    host = \"127.0.0.1\"\n    user = \"a;b\"\n    host_key = \"SHA256:x\"\n  }\n}\n",
		"cluster \"c\" {}\nmachine \"a\" {\n  role = \"manager\"\n  driver = \"ssh\"\n  ssh { host = \"h\" }\n}\nmachine \"b\" {\n  driver = \"ssh\"\n  ssh { host = \"h\" }\n}\n",
		"cluster \"c\" {}\nvariable \"v\" {}\nvariable \"v\" {}\nmachine \"m\" { role = \"manager\" }\n",
		"cluster \"c\" {}\nvariable \"n\" { default = 2 }\nmachine \"w\" {\n  count = var.n\n  hostname = \"w\"\n}\nmachine \"m\" { role = \"manager\" }\nregistry { port = 0 }\n",
		"cluster \"../../x\" {}\nmachine \"m\" { role = \"manager\" }\n",
		"cluster \"c\" {}\ndefaults {\n  driver = \"docker\"\n  docker { network = \"n\" }\n}\nmachine \"m\" { role = \"manager\" }\n",
		"",
		"cluster",
		"cluster \"c\" { x = }",
	} {
		f.Add([]byte(seed))
	}
	reg := allDrivers()
	f.Fuzz(func(t *testing.T, src []byte) {
		spec, diags := LoadSource(src, "fuzz.hcl", Options{}, reg)
		if diags.HasErrors() {
			if spec != nil {
				t.Fatal("a spec along with errors")
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Summary == "" {
					t.Fatalf("an error without a summary: %#v", d)
				}
			}
			return
		}
		if spec == nil {
			t.Fatal("no spec and no error")
		}
		if err := validate.Name(spec.Name); err != nil {
			t.Fatalf("accepted cluster name: %v", err)
		}
		for _, m := range spec.Machines {
			checks := []error{validate.Name(m.Name), validate.Hostname(m.Hostname), validate.EngineVersion(m.Engine.Version)}
			if _, err := validate.ParseRole(string(m.Role)); err != nil {
				checks = append(checks, err)
			}
			if _, err := validate.ParseInstallMode(m.Engine.Install); err != nil {
				checks = append(checks, err)
			}
			if m.DockerUser != "" {
				checks = append(checks, validate.DockerUser(m.DockerUser))
			}
			if m.Engine.RepoURL != "" {
				checks = append(checks, validate.RepoURL(m.Engine.RepoURL))
			}
			for _, u := range m.Engine.RegistryMirrors {
				checks = append(checks, validate.URL(u))
			}
			for _, l := range m.Engine.Labels {
				_, _, err := validate.Label(l)
				checks = append(checks, err)
			}
			for k, v := range m.Labels {
				checks = append(checks, validate.LabelKey(k), validate.LabelValue(v))
			}
			for _, err := range checks {
				if err != nil {
					t.Fatalf("machine %q accepted with a bad value: %v", m.Name, err)
				}
			}
		}
	})
}

// at is a range on line l of t.hcl, as gohcl would have kept it.
func at(l int) hcl.Range {
	return hcl.Range{Filename: "t.hcl", Start: hcl.Pos{Line: l, Column: 3}, End: hcl.Pos{Line: l, Column: 9}}
}

// TestValidateFile: validate is a function of the decoded file (after the
// defaults) alone, and says each mistake at the range the struct keeps.
func TestValidateFile(t *testing.T) {
	reg := allDrivers()
	manager := func(name string, l int) machineBlock {
		return machineBlock{Name: name, Role: ptr("manager"), DefRange: at(l)}
	}
	type diag struct {
		summary string
		line    int // 0: no place
	}
	cases := []struct {
		name  string
		raw   file
		found map[int]found // by machine block, as lookOutside would set it
		want  []diag
	}{
		{"fine", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{manager("m", 2)}}, nil, nil},
		{"no machines", file{Cluster: clusterBlock{Name: "c"}}, nil, []diag{{"No machines", 0}}},
		{"bad cluster name", file{Cluster: clusterBlock{Name: "a b"}, Machines: []machineBlock{manager("m", 2)}}, nil,
			[]diag{{"Invalid cluster name", 0}}},
		{"values at their attribute", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{{
			Name: "m", DefRange: at(2), Role: ptr("boss"), RoleRange: at(3),
			Availability: ptr(""), AvailabilityRange: at(4), DockerUser: ptr(inj), DockerUserRange: at(5),
			AdvertiseAddr: ptr("host"), AdvertiseAddrRange: at(6),
			Labels: map[string]string{"a b": "x", "k": "\n"}, LabelsRange: at(7),
			Engine: &engineBlock{Version: ptr("1; id"), VersionRange: at(9), Labels: []string{"nolabel"}, LabelsRange: at(10)},
		}}}, nil, []diag{
			{"Invalid role", 3}, {"Invalid availability", 4}, {"Invalid label", 2}, {"Invalid label", 7},
			{"Invalid engine version", 9}, {"Invalid engine label", 10}, {"Invalid docker_user", 5}, {"Invalid advertise_addr", 6},
			{"No manager", 2},
		}},
		{"count out of bounds: nothing else said of the block", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{
			manager("m", 2), {Name: "w", DefRange: at(5), Count: ptr(0), CountRange: at(6), Role: ptr("boss")},
		}}, nil, []diag{{"Invalid count", 6}}},
		{"unknown default driver: said once, at the defaults", file{Cluster: clusterBlock{Name: "c"},
			Defaults: &defaultsBlock{Driver: ptr("hyperv"), DriverRange: at(3)},
			Machines: []machineBlock{manager("m", 5), {Name: "w", DefRange: at(7)}},
		}, nil, []diag{{"Unknown driver", 3}}},
		{"unknown machine driver", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{
			{Name: "m", Role: ptr("manager"), DefRange: at(2), Driver: ptr("hyperv"), DriverRange: at(4)},
		}}, nil, []diag{{"Unknown driver", 4}}},
		{"an adopted host is one machine", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{
			manager("m", 2), {Name: "e", DefRange: at(5), Driver: ptr("ssh"), Count: ptr(2), CountRange: at(6)},
		}}, nil, []diag{{"Invalid count", 6}}},
		{"duplicate names and hostnames", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{
			manager("a", 2), {Name: "a", DefRange: at(5)}, {Name: "b", DefRange: at(8), Hostname: ptr("A"), HostnameRange: at(9)},
		}}, nil, []diag{{"Duplicate machine name", 5}, {"Duplicate hostname", 9}}},
		{"what lookOutside found, at the block", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{manager("m", 2)}},
			map[int]found{0: {archives: []error{errors.New("gone")}, settings: errors.New("bad")}},
			[]diag{{"Image archive not found", 2}, {"Invalid docker settings", 2}}},
		{"an unreadable ssh_config hides the driver's check", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{
			{Name: "m", Role: ptr("manager"), DefRange: at(2), Driver: ptr("ssh")},
		}}, map[int]found{0: {resolve: errors.New("no such file"), settings: errors.New("bad")}},
			[]diag{{"Invalid ssh_config", 2}}},
		{"swarm and registry", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{manager("m", 2)},
			Swarm: &swarmBlock{MaxUnavailable: ptr(0), MaxUnavailableRange: at(5)},
			Registry: &registryBlock{Node: ptr("w"), NodeRange: at(8), Port: ptr(0), PortRange: at(9),
				Image: ptr(inj), ImageRange: at(10), Path: ptr("var/lib"), PathRange: at(11)},
		}, nil, []diag{
			{"Invalid max_unavailable", 5}, {"Unknown registry node", 8}, {"Invalid registry port", 9},
			{"Invalid registry image", 10}, {"Invalid registry path", 11},
		}},
		{"even managers: a warning at the last", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{manager("a", 2), manager("b", 5)}},
			nil, []diag{{"Even number of managers", 5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fillDefaults(&c.raw, "", reg)
			for i, f := range c.found {
				c.raw.Machines[i].found = f
			}
			diags := validateFile(&c.raw, reg)
			var got []diag
			for _, d := range diags {
				l := 0
				if d.Subject != nil {
					l = d.Subject.Start.Line
				}
				got = append(got, diag{d.Summary, l})
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("diagnostics %v\nwant        %v\n%s", got, c.want, diags.Error())
			}
		})
	}
}
