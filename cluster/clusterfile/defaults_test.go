package clusterfile

import (
	"github.com/shoal-dev/shoal/internal/store"
	"reflect"
	"testing"

	"github.com/shoal-dev/shoal/drivers/docker"
	"github.com/shoal-dev/shoal/drivers/ssh"
)

func ptr[T any](v T) *T { return &v }

// TestFillDefaults: what a machine is when its block and the defaults
// leave a setting out, from the decoded structs alone.
func TestFillDefaults(t *testing.T) {
	reg := allDrivers()
	type want struct {
		name, hostname, role, driver, dockerUser string
		archives                                 []string
		engine                                   store.Engine
		config                                   any
	}
	plain := store.Engine{Install: "auto", TLS: true}
	dockerDefault := docker.Spec().NewConfig()
	cases := []struct {
		name    string
		def     *defaultsBlock
		block   machineBlock
		baseDir string
		want    []want
	}{
		{"nothing said", nil, machineBlock{Name: "m"}, "",
			[]want{{"m", "m", "worker", "docker", "", nil, plain, dockerDefault}}},
		{"count names and hostnames", nil, machineBlock{Name: "w", Count: ptr(2), Hostname: ptr("node")}, "",
			[]want{
				{"w-1", "node-1", "worker", "docker", "", nil, plain, dockerDefault},
				{"w-2", "node-2", "worker", "docker", "", nil, plain, dockerDefault},
			}},
		{"count = 1 keeps the suffix, a hostname alone does not get one", nil, machineBlock{Name: "w", Count: ptr(1), Hostname: ptr("node")}, "",
			[]want{{"w-1", "node", "worker", "docker", "", nil, plain, dockerDefault}}},
		{"the defaults' settings", &defaultsBlock{
			Driver: ptr("ssh"), DockerUser: ptr("deploy"), ImageArchives: []string{"images.tar", "/abs.tar"},
			Engine: &engineBlock{Install: ptr("repo"), Labels: []string{"a=b"}},
		}, machineBlock{Name: "m", Role: ptr("manager"), Engine: &engineBlock{TLS: ptr(false), Labels: []string{"c=d"}}}, "/etc/shoal",
			[]want{{"m", "m", "manager", "ssh", "deploy", []string{"/etc/shoal/images.tar", "/abs.tar"},
				store.Engine{Install: "repo", Labels: []string{"a=b", "c=d"}}, ssh.Spec().NewConfig()}}},
		{"the block's settings win", &defaultsBlock{
			Driver: ptr("ssh"), DockerUser: ptr("deploy"), ImageArchives: []string{"/abs.tar"},
		}, machineBlock{Name: "m", Driver: ptr("docker"), DockerUser: ptr("ops"), ImageArchives: []string{}}, "",
			[]want{{"m", "m", "worker", "docker", "ops", nil, plain, dockerDefault}}},
		{"the driver config: the defaults', then the block's", &defaultsBlock{
			drivers: driverBlocks{configs: map[string]any{"docker": &docker.Config{Image: "img", Network: "n"}}},
		}, machineBlock{Name: "m"}, "",
			[]want{{"m", "m", "worker", "docker", "", nil, plain, &docker.Config{Image: "img", Network: "n"}}}},
		{"a block's own driver config", &defaultsBlock{
			drivers: driverBlocks{configs: map[string]any{"docker": &docker.Config{Image: "img", Network: "n"}}},
		}, machineBlock{Name: "m", drivers: driverBlocks{configs: map[string]any{"docker": &docker.Config{Image: "mine", Network: "n"}}}}, "",
			[]want{{"m", "m", "worker", "docker", "", nil, plain, &docker.Config{Image: "mine", Network: "n"}}}},
		{"count out of bounds: no machines", nil, machineBlock{Name: "m", Count: ptr(0)}, "", nil},
		{"count too big: no machines", nil, machineBlock{Name: "m", Count: ptr(101)}, "", nil},
		{"unknown driver: no machines", nil, machineBlock{Name: "m", Driver: ptr("hyperv")}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := &file{Defaults: c.def, Machines: []machineBlock{c.block}}
			fillDefaults(raw, c.baseDir, reg)
			got := raw.Machines[0].machines
			if len(got) != len(c.want) {
				t.Fatalf("%d machines, want %d: %v", len(got), len(c.want), Names(got))
			}
			for i, w := range c.want {
				m := got[i]
				if m.Name != w.name || m.Hostname != w.hostname || string(m.Role) != w.role || m.Driver != w.driver || m.DockerUser != w.dockerUser {
					t.Errorf("machine %d = %s/%s role %s driver %s user %q, want %s/%s role %s driver %s user %q",
						i, m.Name, m.Hostname, m.Role, m.Driver, m.DockerUser, w.name, w.hostname, w.role, w.driver, w.dockerUser)
				}
				if !reflect.DeepEqual(m.ImageArchives, w.archives) {
					t.Errorf("%s: archives %q, want %q", m.Name, m.ImageArchives, w.archives)
				}
				if !reflect.DeepEqual(m.Engine, w.engine) {
					t.Errorf("%s: engine %+v, want %+v", m.Name, m.Engine, w.engine)
				}
				if !reflect.DeepEqual(m.DriverConfig, w.config) {
					t.Errorf("%s: config %+v, want %+v", m.Name, m.DriverConfig, w.config)
				}
			}
			// No two machines share a config, nor one with the blocks.
			for i := range got {
				for j := range got {
					if i != j && got[i].DriverConfig == got[j].DriverConfig {
						t.Errorf("machines %d and %d share a config", i, j)
					}
				}
				if c.def != nil && got[i].DriverConfig == c.def.drivers.configs[got[i].Driver] {
					t.Errorf("machine %d shares the defaults' config", i)
				}
			}
		})
	}
}

// TestSpecOf: the swarm's and the registry's settings of a valid file.
func TestSpecOf(t *testing.T) {
	manager := Node{Name: "m-1", Role: "manager"}
	cases := []struct {
		name string
		raw  file
		want Spec
	}{
		{"defaults", file{Cluster: clusterBlock{Name: "c"}, Machines: []machineBlock{{machines: []Node{{Name: "w", Role: "worker"}, manager}}}},
			Spec{Name: "c", MaxUnavailable: 1, Registry: Registry{Enabled: true, Node: "m-1", Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}}},
		{"no manager: no registry node", file{Cluster: clusterBlock{Name: "c"}},
			Spec{Name: "c", MaxUnavailable: 1, Registry: Registry{Enabled: true, Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}}},
		{"all said", file{
			Cluster:  clusterBlock{Name: "c"},
			Machines: []machineBlock{{machines: []Node{manager}}},
			Swarm:    &swarmBlock{Autolock: ptr(true), AutoUnlock: ptr(true), ForceRejoin: ptr(true), MaxUnavailable: ptr(3)},
			Registry: &registryBlock{Enabled: ptr(false), Node: ptr("w"), Port: ptr(5050), Image: ptr("registry:2.8"), Path: ptr("/srv")},
		}, Spec{Name: "c", Autolock: true, AutoUnlock: true, ForceRejoin: true, MaxUnavailable: 3,
			Registry: Registry{Node: "w", Port: 5050, Image: "registry:2.8", Path: "/srv"}}},
		{"max_unavailable = 0 is the default", file{Swarm: &swarmBlock{MaxUnavailable: ptr(0)}},
			Spec{MaxUnavailable: 1, Registry: Registry{Enabled: true, Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := specOf(&c.raw)
			got.Machines = nil
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("spec = %+v\nwant   %+v", *got, c.want)
			}
		})
	}
}
