package main

import (
	"github.com/shoal-dev/shoal/internal/remote"

	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

func TestParseTimeout(t *testing.T) {
	good := map[string]time.Duration{"20": 20 * time.Second, "1": time.Second, "20s": 20 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond}
	for in, want := range good {
		if got, err := parseTimeout(in); err != nil || got != want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-3", "abc", "-1s", "0s", "20 s"} {
		if _, err := parseTimeout(in); err == nil {
			t.Errorf("parseTimeout(%q) succeeded", in)
		}
	}
}

func TestSplitSpec(t *testing.T) {
	cases := []struct{ in, name, path string }{
		{"m1:/tmp/f", "m1", "/tmp/f"},
		{"m1:rel/f", "m1", "rel/f"},
		{"/tmp/a:b", "", "/tmp/a:b"},
		{"./a:b", "", "./a:b"},
		{"local.txt", "", "local.txt"},
		{":x", "", ":x"},
		{"node-1.lab:/f", "node-1.lab", "/f"},
		{"m1:~", "m1", "."},
		{"m1:~/", "m1", "."},
		{"m1:~/app/x.yml", "m1", "app/x.yml"},
		{"m1:~other/x", "m1", "~other/x"},
	}
	for _, c := range cases {
		n, p, err := splitSpec(c.in)
		if err != nil || n != c.name || p != c.path {
			t.Errorf("splitSpec(%q) = %q, %q, %v; want %q, %q", c.in, n, p, err, c.name, c.path)
		}
	}
	for _, bad := range []string{"a b:/f", "$(id):/f", "-rf:/x", "m1:", "a_b:/f"} {
		if _, _, err := splitSpec(bad); err == nil {
			t.Errorf("splitSpec(%q) took it", bad)
		}
	}
}

func testMachine() *store.Machine {
	return &store.Machine{
		Setup: store.Setup{
			Hostname: "m1",
			Engine:   store.Engine{TLS: true, Labels: []string{"env=dev"}, InsecureRegistries: []string{"r:5000"}, StorageDriver: "overlay2", Opts: []string{"log-level=warn"}, Env: []string{"HTTP_PROXY=http://p:3128"}},
		},
		Name: "m1", Driver: "ssh", Address: "10.0.0.5", SSH: remote.Endpoint{Host: "10.0.0.5", Port: 2222, User: "docker", KeyPath: "/k/id_rsa"},
	}
}

func TestInspectTemplates(t *testing.T) {
	st := &store.Store{Root: "/s"}
	h := newDMHost(st, testMachine())
	cases := map[string]string{
		"{{.Name}}":                                            "m1",
		"{{.DriverName}}":                                      "ssh",
		"{{.Driver.IPAddress}}":                                "10.0.0.5",
		"{{.Driver.SSHUser}}":                                  "docker",
		"{{.Driver.SSHPort}}":                                  "2222",
		"{{.Driver.SSHKeyPath}}":                               "/k/id_rsa",
		"{{.HostOptions.EngineOptions.StorageDriver}}":         "overlay2",
		"{{.HostOptions.EngineOptions.Labels}}":                "[env=dev]",
		"{{json .HostOptions.EngineOptions.InsecureRegistry}}": `["r:5000"]`,
		"{{.HostOptions.EngineOptions.TLSVerify}}":             "true",
		"{{.HostOptions.AuthOptions.CaCertPath}}":              "/s/certs/ca.pem",
		"{{.Address}}":                                         "10.0.0.5",
		"{{.SSH.User}}":                                        "docker",
		"{{json .Driver.IPAddress}}":                           `"10.0.0.5"`,
	}
	for f, want := range cases {
		tm, err := parseTemplate("format", f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, h); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if b.String() != want {
			t.Errorf("%s = %q, want %q", f, b.String(), want)
		}
	}
	tm, _ := parseTemplate("format", "{{prettyjson .Driver}}")
	var b bytes.Buffer
	if err := tm.Execute(&b, h); err != nil || !strings.Contains(b.String(), "\n    \"IPAddress\": \"10.0.0.5\"") {
		t.Errorf("prettyjson: %v\n%s", err, b.String())
	}
	tm, _ = parseTemplate("format", "{{json .}}")
	b.Reset()
	if err := tm.Execute(&b, h); err != nil || !strings.Contains(b.String(), `"DriverName":"ssh"`) || strings.Contains(b.String(), `"hostname"`) {
		t.Errorf("json .: %v\n%s", err, b.String())
	}
	if _, err := parseTemplate("format", "{{.Name"); err == nil {
		t.Errorf("a broken template parsed")
	}
}

func TestLsFormat(t *testing.T) {
	items := []lsItem{
		{Name: "m1", Active: "*", DriverName: "docker", State: "Running", URL: "tcp://10.0.0.5:2376", DockerVersion: "v27.0.3"},
		{Name: "m2", Active: "-", DriverName: "ssh", State: "Stopped"},
	}
	cases := map[string]string{
		"{{.Name}}":                                              "m1\nm2\n",
		"{{.Name}} {{.Active}} {{.State}}":                       "m1 * Running\nm2 - Stopped\n",
		`{{.Name}}\t{{.DriverName}}`:                             "m1\tdocker\nm2\tssh\n",
		"table {{.Name}} {{.URL}}":                               "NAME URL\nm1 tcp://10.0.0.5:2376\nm2 \n",
		"table {{.Name}}\t{{.DockerVersion}}\t{{.ResponseTime}}": "NAME\tDOCKER\tRESPONSE\nm1\tv27.0.3\t0s\nm2\t\t0s\n",
	}
	for f, want := range cases {
		tm, table, err := parseLsFormat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := renderLs(tm, table, items)
		if err != nil || got != want {
			t.Errorf("%s:\n got %q, %v\nwant %q", f, got, err, want)
		}
	}
	// The default table is the ls columns.
	tm, table, _ := parseLsFormat(lsDefaultFormat)
	got, _ := renderLs(tm, table, nil)
	if strings.Fields(got)[0] != "NAME" || len(strings.Fields(got)) != 8 {
		t.Errorf("default header %q", got)
	}
}

// The header row comes from the template's fields: nested ones, those in
// functions and conditionals too; a condition does not decide it.
func TestLsTableHeader(t *testing.T) {
	items := []lsItem{
		newLsItem(machine.Info{Name: "m1", Active: true, State: "Running"}, &dmHost{HostOptions: &dmHostOptions{
			EngineOptions: &dmEngineOptions{StorageDriver: "overlay2"}, SwarmOptions: &dmSwarmOptions{IsSwarm: true}}}),
		newLsItem(machine.Info{Name: "m2", State: "Stopped"}, nil), // config unreadable: empty options
	}
	items[1].Error = "\x1b]0;owned\x07" // a host's text: its escapes go
	cases := []struct{ format, want string }{
		{`table {{.Name}}\t{{.EngineOptions.StorageDriver}}`, "NAME\tSTORAGE_DRIVER\nm1\toverlay2\nm2\t\n"},
		{`table {{if .ActiveHost}}*{{end}}\t{{.Name}}`, "ACTIVE_HOST\tNAME\n*\tm1\n\tm2\n"},
		{`table {{.Name}}\t{{if eq .State "Running"}}up{{else}}down{{end}}`, "NAME\tSTATE\nm1\tup\nm2\tdown\n"},
		{`table {{.Name}}\t{{with .SwarmOptions}}{{.IsSwarm}}{{end}}`, "NAME\tIS_SWARM\nm1\ttrue\nm2\tfalse\n"},
		{`table {{upper .Name}}\t{{.DriverName}}\t{{.Error}}\t{{.Certs}}`, "NAME\tDRIVER\tERRORS\tCERTS\nM1\t\t\t\nM2\t\t\t\n"},
		{`table {{.Name}}:{{.Error}}`, "NAME:ERRORS\nm1:\nm2:\n"},
		{`table {{range .EngineOptions.Labels}}{{.}} {{end}}|{{$.Name}}`, "LABELS|NAME\n|m1\n|m2\n"},
	}
	for _, c := range cases {
		tm, table, err := parseLsFormat(c.format)
		if err != nil || !table {
			t.Fatalf("%s: %v", c.format, err)
		}
		got, err := renderLs(tm, table, items)
		if err != nil || got != c.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", c.format, got, err, c.want)
		}
	}
}

func TestUpperSnake(t *testing.T) {
	for in, want := range map[string]string{"Name": "NAME", "URL": "URL", "IPAddress": "IP_ADDRESS",
		"StorageDriver": "STORAGE_DRIVER", "TLSVerify": "TLS_VERIFY", "Ipv6": "IPV6"} {
		if got := upperSnake(in); got != want {
			t.Errorf("upperSnake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestActiveRow(t *testing.T) {
	in := machine.Info{Name: "m1", URL: "tcp://10.0.0.5:2376", State: "Running"}
	cases := []struct {
		host, name string
		want       bool
	}{
		{"tcp://10.0.0.5:2376", "", true},
		{"tcp://10.0.0.5:2376", "other", true},
		{"tcp://10.0.0.6:2376", "m1", false},
		{"", "m1", true},
		{"", "", false},
	}
	for _, c := range cases {
		if got := activeRow(in, c.host, c.name); got != c.want {
			t.Errorf("DOCKER_HOST=%q DOCKER_MACHINE_NAME=%q: %v", c.host, c.name, got)
		}
	}
	stopped := in
	stopped.State = "Stopped"
	if activeRow(stopped, in.URL, "") {
		t.Errorf("a stopped machine is active")
	}
}

func TestMachineNames(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"alpha", "beta", "alfa"} {
		os.MkdirAll(filepath.Join(root, "machines", n), 0o700)
		os.WriteFile(filepath.Join(root, "machines", n, store.ConfigFile), []byte("{}"), 0o600)
	}
	os.MkdirAll(filepath.Join(root, "machines", "half"), 0o700) // no config: not a machine
	if got := strings.Join(machineNames(root, nil, ""), ","); got != "alfa,alpha,beta" {
		t.Errorf("all: %s", got)
	}
	if got := strings.Join(machineNames(root, []string{"alpha"}, "al"), ","); got != "alfa" {
		t.Errorf("prefix al without alpha: %s", got)
	}
	if got := machineNames(filepath.Join(root, "none"), nil, ""); got != nil {
		t.Errorf("no store: %v", got)
	}
	if _, err := os.Stat(filepath.Join(root, "none")); err == nil {
		t.Errorf("completion made a store")
	}
}

func TestLsFilter(t *testing.T) {
	rows := []machine.Info{
		{Name: "web1", DriverName: "docker", State: "Running", Swarm: "m1 (master)"},
		{Name: "web2", DriverName: "ssh", State: "Stopped", Swarm: "m1"},
		{Name: "db", DriverName: "ssh", State: "Running", Cluster: "lab"},
	}
	labels := map[string][]string{"web1": {"env=prod"}, "db": {"env=prod", "tier=db"}}
	cases := map[string]string{
		"":                                   "web1,web2,db",
		"name=web":                           "web1,web2",
		"name=^db$":                          "db",
		"driver=ssh":                         "web2,db",
		"driver=docker driver=ssh":           "web1,web2,db",
		"driver=ssh state=running":           "db",
		"DriverName=SSH":                     "web2,db",
		"label=env=prod":                     "web1,db",
		"label=env=prod label=tier=db":       "web1,db",
		"label=env=prod name=web":            "web1",
		"swarm=m1":                           "web1,web2",
		"cluster=lab":                        "db",
		"state=Stopped state=Running name=2": "web2",
	}
	for in, want := range cases {
		f, err := parseFilters(strings.Fields(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var got []string
		for _, r := range rows {
			if f.matches(r, labels[r.Name]) {
				got = append(got, r.Name)
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("--filter %q: %v, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"name", "color=red", "name=[", "=x"} {
		if _, err := parseFilters([]string{bad}); err == nil {
			t.Errorf("--filter %q taken", bad)
		}
	}
}

func TestValidateEngineCompat(t *testing.T) {
	for _, u := range []string{"", "https://get.docker.com", "https://get.docker.com/"} {
		if err := validateEngineCompat(&store.Engine{}, &engineCompat{installURL: u}); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	if err := validateEngineCompat(&store.Engine{}, &engineCompat{installURL: "https://releases.rancher.com/install-docker/19.03.sh"}); err == nil || !strings.Contains(err.Error(), "--engine-repo-url") {
		t.Errorf("a script URL: %v", err)
	}
	// The engine's own values are machine.EngineErrors'.
	e := store.Engine{Install: "auto", Opts: []string{"x"}, Env: []string{"A"}, TLSSANs: []string{"a b"}, StorageDriver: "x y", TLSPort: 70000}
	errs := machine.EngineErrors(e)
	text := fmt.Sprint(errs)
	for _, flag := range []string{"--engine-opt", "--engine-env", "--tls-san", "port"} {
		if !strings.Contains(text, flag) {
			t.Errorf("EngineErrors lacks %s: %v", flag, errs)
		}
	}
	if errs := machine.EngineErrors(store.Engine{Install: "auto", Opts: []string{"log-level=debug"}, Env: []string{"A=b c"}, TLSSANs: []string{"x.example"}, StorageDriver: "overlay2"}); len(errs) != 0 {
		t.Errorf("good values: %v", errs)
	}
}

func TestWithDefaultName(t *testing.T) {
	has := func(want bool) func(string) bool { return func(n string) bool { return want && n == "default" } }
	if got, err := withDefaultName([]string{"m1", "m2"}, has(true)); err != nil || strings.Join(got, ",") != "m1,m2" {
		t.Errorf("named: %v %v", got, err)
	}
	if got, err := withDefaultName(nil, has(true)); err != nil || strings.Join(got, ",") != "default" {
		t.Errorf("none named, default there: %v %v", got, err)
	}
	_, err := withDefaultName(nil, has(false))
	if err == nil || !strings.Contains(err.Error(), `no "default" machine exists`) {
		t.Errorf("none named, no default: %v", err)
	}
}
