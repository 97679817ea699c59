package machine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/store"
)

func newManager(t *testing.T, machines ...*store.Machine) *Manager {
	t.Helper()
	st, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		if err := st.Save(m); err != nil {
			t.Fatal(err)
		}
	}
	return NewManager(st, drivers.NewRegistry())
}

func TestRootMaster(t *testing.T) {
	master := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Master: true}}, Name: "m", Driver: "docker"}
	w1 := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Join: "m"}}, Name: "w1", Driver: "docker"}
	w2 := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Join: "w1", Manager: true}}, Name: "w2", Driver: "docker"}
	loner := &store.Machine{Name: "loner", Driver: "docker"}
	orphan := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Join: "gone"}}, Name: "orphan", Driver: "docker"}
	a := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Join: "b"}}, Name: "a", Driver: "docker"}
	b := &store.Machine{Setup: store.Setup{Swarm: &store.Swarm{Join: "a"}}, Name: "b", Driver: "docker"}
	mgr := newManager(t, master, w1, w2, loner, orphan, a, b)

	for _, m := range []*store.Machine{master, w1, w2} {
		got, err := mgr.RootMaster(m)
		if err != nil {
			t.Fatalf("RootMaster(%s): %v", m.Name, err)
		}
		if got.Name != "m" {
			t.Errorf("RootMaster(%s) = %s, want m", m.Name, got.Name)
		}
	}
	if _, err := mgr.RootMaster(loner); err == nil || !strings.Contains(err.Error(), "loner") {
		t.Errorf("RootMaster of a machine in no swarm = %v", err)
	}
	if _, err := mgr.RootMaster(orphan); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("RootMaster with a missing master = %v, want ErrNotFound naming it", err)
	}
	if _, err := mgr.RootMaster(a); err == nil || !strings.Contains(err.Error(), "circles") {
		t.Errorf("RootMaster of a join loop = %v", err)
	}
}

func TestSwarmNeeds(t *testing.T) {
	master := &store.Machine{
		Setup: store.Setup{
			Hostname: "mhost",
			Swarm:    &store.Swarm{Master: true, Registry: true, RegistryPort: 5050, RegistryNode: "r"},
		},
		Name: "m", Address: "10.0.0.1", Driver: "docker",
	}
	reg := &store.Machine{Setup: store.Setup{Hostname: "r", Swarm: &store.Swarm{Join: "m"}}, Name: "r", Address: "10.0.0.3", Driver: "docker"}
	w := &store.Machine{
		Setup: store.Setup{
			Hostname: "w",
			Swarm:    &store.Swarm{Join: "m"},
			Hosts:    []store.HostEntry{{IP: "10.0.0.9", Names: []string{"other"}}},
		},
		Name: "w", Address: "10.0.0.2", Driver: "docker"}
	mgr := newManager(t, master, reg, w)

	hosts, registries, ports, err := mgr.swarmNeeds(&Machine{Machine: w})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hosts {
		got = append(got, h.IP+"="+strings.Join(h.Names, ","))
	}
	if want := []string{"10.0.0.9=other", "10.0.0.1=mhost,m"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	if want := []string{"r:5050", "10.0.0.3:5050"}; !reflect.DeepEqual(registries, want) {
		t.Errorf("registries = %v, want %v", registries, want)
	}
	if len(ports) != 0 {
		t.Errorf("ports on a node without the registry = %v", ports)
	}
	_, _, ports, err = mgr.swarmNeeds(&Machine{Machine: reg})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ports, []string{"5050/tcp"}) {
		t.Errorf("ports on the registry node = %v, want [5050/tcp]", ports)
	}
	// A swarm with its own VXLAN port: the firewall lets it in.
	w.Swarm.DataPathPort = 4800
	if _, _, ports, err = mgr.swarmNeeds(&Machine{Machine: w}); err != nil || !reflect.DeepEqual(ports, []string{"4800/udp"}) {
		t.Errorf("ports with data_path_port 4800 = %v, %v; want [4800/udp]", ports, err)
	}
	// The master itself: no /etc/hosts line for itself.
	hosts, _, _, err = mgr.swarmNeeds(&Machine{Machine: master})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 0 {
		t.Errorf("master's hosts = %v", hosts)
	}
}

func TestSwarmColumn(t *testing.T) {
	cases := map[string]*store.Machine{
		"":           {Name: "x"},
		"m (master)": {Setup: store.Setup{Swarm: &store.Swarm{Master: true}}, Name: "m"},
		"m":          {Setup: store.Setup{Swarm: &store.Swarm{Join: "m"}}, Name: "w"},
	}
	for want, m := range cases {
		if got := swarmColumn(m); got != want {
			t.Errorf("swarmColumn(%s) = %q, want %q", m.Name, got, want)
		}
	}
}
