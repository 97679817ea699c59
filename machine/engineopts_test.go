package machine

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestEngineOptions(t *testing.T) {
	cases := []struct {
		name     string
		opts     []string
		driver   string
		defaults string // JSON of Defaults
		labels   []string
		insecure []string
		mirrors  []string
	}{
		{name: "nothing", defaults: "null"},
		{name: "daemon.json keys", opts: []string{"log-level=debug", "max-concurrent-downloads=3", "debug=true", "dns=8.8.8.8", "dns=1.1.1.1",
			`log-opts={"max-size":"10m"}`, "--experimental=false", "data-root=/srv/docker"}, driver: "overlay2",
			defaults: `{"data-root":"/srv/docker","debug":true,"dns":["8.8.8.8","1.1.1.1"],"experimental":false,"log-level":"debug","log-opts":{"max-size":"10m"},"max-concurrent-downloads":3,"storage-driver":"overlay2"}`},
		// Issue 27 item 7: docker-machine passes each --engine-opt as a
		// dockerd flag; these are its users' usual ones.
		{name: "log-opt", opts: []string{"log-opt=max-size=10m", "log-opt=max-file=3"},
			defaults: `{"log-opts":{"max-file":"3","max-size":"10m"}}`},
		{name: "log-opt both forms", opts: []string{"log-opt=max-size=10m", `log-opts={"max-file":"3"}`},
			defaults: `{"log-opts":{"max-file":"3","max-size":"10m"}}`},
		{name: "default-ulimit", opts: []string{"default-ulimit=nofile=1024:2048", "default-ulimit=nproc=512"},
			defaults: `{"default-ulimits":{"nofile":{"Hard":2048,"Name":"nofile","Soft":1024},"nproc":{"Hard":512,"Name":"nproc","Soft":512}}}`},
		{name: "default-ulimits json", opts: []string{`default-ulimits={"nofile":{"Name":"nofile","Soft":10,"Hard":20}}`},
			defaults: `{"default-ulimits":{"nofile":{"Hard":20,"Name":"nofile","Soft":10}}}`},
		{name: "label", opts: []string{"label=env=prod", "label=zone=a", "labels=rack=7"}, defaults: "null",
			labels: []string{"env=prod", "zone=a", "rack=7"}},
		{name: "registries", opts: []string{"insecure-registry=10.0.0.5:5000", "registry-mirror=https://m.example"}, defaults: "null",
			insecure: []string{"10.0.0.5:5000"}, mirrors: []string{"https://m.example"}},
		{name: "lists", opts: []string{"dns-opt=ndots:2", "exec-opt=native.cgroupdriver=systemd", "storage-opt=dm.basesize=20G", `dns-search=["a.example","b.example"]`},
			defaults: `{"dns-opts":["ndots:2"],"dns-search":["a.example","b.example"],"exec-opts":["native.cgroupdriver=systemd"],"storage-opts":["dm.basesize=20G"]}`},
		{name: "bare booleans", opts: []string{"live-restore", "--iptables=false", "userland-proxy=0"},
			defaults: `{"iptables":false,"live-restore":true,"userland-proxy":false}`},
		{name: "strings stay strings", opts: []string{"default-shm-size=64", "bip=172.26.0.1/16", "graph=/srv/d"},
			defaults: `{"bip":"172.26.0.1/16","data-root":"/srv/d","default-shm-size":"64"}`},
		{name: "runtimes", opts: []string{"add-runtime=runsc=/usr/local/bin/runsc"}, defaults: `{"runtimes":{"runsc":{"path":"/usr/local/bin/runsc"}}}`},
		{name: "pools", opts: []string{"default-address-pool=base=10.10.0.0/16,size=24", "default-address-pool=base=10.20.0.0/16,size=26"},
			defaults: `{"default-address-pools":[{"base":"10.10.0.0/16","size":24},{"base":"10.20.0.0/16","size":26}]}`},
		{name: "features", opts: []string{"feature=buildkit=true"}, defaults: `{"features":{"buildkit":true}}`},
		{name: "storage driver both ways", opts: []string{"storage-driver=overlay2"}, driver: "overlay2", defaults: `{"storage-driver":"overlay2"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := EngineOptions(c.opts, c.driver)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(got.Defaults); string(b) != c.defaults {
				t.Errorf("defaults\ngot  %s\nwant %s", b, c.defaults)
			}
			for _, l := range []struct {
				what      string
				got, want []string
			}{{"labels", got.Labels, c.labels}, {"insecure", got.InsecureRegistries, c.insecure}, {"mirrors", got.RegistryMirrors, c.mirrors}} {
				if !slices.Equal(l.got, l.want) {
					t.Errorf("%s: got %q, want %q", l.what, l.got, l.want)
				}
			}
		})
	}
}

func TestEngineOptionsRefused(t *testing.T) {
	cases := []struct {
		opts []string
		want string
	}{
		{[]string{"novalue"}, "no such"},
		{[]string{"log-level"}, "log-level=VALUE"},
		{[]string{"=x"}, "want key=value"},
		{[]string{"Bad=x"}, "want key=value"},
		{[]string{"a b=c"}, "want key=value"},
		{[]string{"hosts=tcp://0.0.0.0:2375"}, "not here"},
		{[]string{"host=tcp://0.0.0.0:2375"}, "not here"},
		{[]string{"tlsverify=false"}, "not here"},
		{[]string{"log-level=debug", "log-level=info"}, "given twice"},
		{[]string{"log-opt=max-size=1m", "log-opt=max-size=2m"}, "max-size is given twice"},
		// Keys dockerd does not know: it would not start.
		{[]string{"log-opt-max-size=10m"}, "no such"},
		{[]string{"ulimit=nofile=1"}, "no such"},
		{[]string{"log-opt=max-size"}, "KEY=VALUE"},
		{[]string{"log-opts=10m"}, "KEY=VALUE"},
		{[]string{`log-opts={"max-size":10}`}, "max-size"},
		{[]string{"default-ulimit=nofile"}, "SOFT"},
		{[]string{"default-ulimit=nofile=2048:1024"}, "above the hard"},
		{[]string{"default-ulimit=files=1:2"}, "ulimit \"files\""},
		{[]string{"default-ulimit=nofile=a:b"}, "whole numbers"},
		{[]string{"mtu=large"}, "whole number"},
		{[]string{"live-restore=maybe"}, "true or false"},
		{[]string{"log-driver="}, "want a value"},
		{[]string{"label=novalue"}, "--engine-opt labels"},
		{[]string{"insecure-registry=http://r:5000"}, "--engine-opt insecure-registries"},
		{[]string{"registry-mirror=mirror.local"}, "--engine-opt registry-mirrors"},
		{[]string{"dns=[1]"}, "list of strings"},
		{[]string{"builder=[]"}, "JSON object"},
		{[]string{"default-address-pool=base=10.0.0.0/8,size=4"}, "size 4"},
		{[]string{"default-address-pool=10.0.0.0/8"}, "base=CIDR"},
		{[]string{"log-level=a\nb"}, "control character"},
		{[]string{"storage-driver=btrfs"}, "differ"},
	}
	for _, c := range cases {
		_, err := EngineOptions(c.opts, "overlay2")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EngineOptions(%q): err %v, want one saying %q", c.opts, err, c.want)
		}
	}
	for _, bad := range []string{"x y", "../x", "Overlay"} {
		if _, err := EngineOptions(nil, bad); err == nil {
			t.Errorf("storage driver %q taken", bad)
		}
	}
	// A near miss names the key.
	if _, err := EngineOptions([]string{"log-opts-x=1"}, ""); err == nil {
		t.Error("log-opts-x taken")
	}
	if _, err := EngineOptions([]string{"label-x=1"}, ""); err == nil {
		t.Error("label-x taken")
	}
	if _, err := EngineOptions([]string{"log-opt=max-size=1m", "insecure-registries=x"}, ""); err != nil {
		t.Error(err)
	}
	if _, err := EngineOptions([]string{"logopts=1"}, ""); err == nil || !strings.Contains(err.Error(), "did you mean log-opts") {
		t.Errorf("logopts: %v, want a suggestion", err)
	}
}

// FuzzEngineOptions: any --engine-opt either is refused or becomes keys
// dockerd knows, with values of their shape, that marshal to JSON.
func FuzzEngineOptions(f *testing.F) {
	for _, s := range []string{"log-opt=max-size=10m", "default-ulimit=nofile=1024:2048", "label=a=b", `log-opts={"a":"b"}`,
		"live-restore", "mtu=1400", "dns=[\"1.1.1.1\"]", "default-address-pool=base=10.0.0.0/8,size=24", "add-runtime=x=/y",
		`default-ulimits={"nofile":{"Soft":1,"Hard":2}}`, `features={"buildkit":true}`, `runtimes={"r":{"path":"/x","runtimeArgs":["a"]}}`} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, opt, opt2 string) {
		c, err := EngineOptions([]string{opt, opt2}, "")
		if err != nil {
			return
		}
		for k := range c.Defaults {
			if _, known := daemonKeys[k]; !known {
				t.Fatalf("%q %q: key %q dockerd does not know", opt, opt2, k)
			}
			if _, owned := ownedKeys[k]; owned || k == "labels" || k == "insecure-registries" || k == "registry-mirrors" {
				t.Fatalf("%q %q: key %q in Defaults", opt, opt2, k)
			}
		}
		if _, err := json.Marshal(c.Defaults); err != nil {
			t.Fatalf("%q %q: %v", opt, opt2, err)
		}
	})
}

func TestValidateSANs(t *testing.T) {
	if err := ValidateSANs([]string{"docker.example.com", "10.0.0.7", "fd00::7", "*.lab.example", "node1"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"not a name", "", "a..b", "-x.example", "a/b"} {
		if err := ValidateSANs([]string{bad}); err == nil {
			t.Errorf("ValidateSANs(%q) took it", bad)
		}
	}
	names, ips := splitSANs([]string{"b.example", "10.0.0.7", "a.example"})
	if len(names) != 2 || names[0] != "a.example" || len(ips) != 1 {
		t.Errorf("splitSANs: %v %v", names, ips)
	}
}
