package cluster

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

// The check finds a cluster's machines, or a swarm master's (machine
// create --swarm-master / --swarm-join, joins followed to the root).
func TestCheckNodes(t *testing.T) {
	st := newStore(t)
	save := func(name, cluster string, sw *store.Swarm) {
		if err := st.Save(&store.Machine{Setup: store.Setup{Cluster: cluster, Swarm: sw}, Name: name, Driver: "docker"}); err != nil {
			t.Fatal(err)
		}
	}
	save("c-1", "lab", nil)
	save("c-2", "lab", nil)
	save("boss", "", &store.Swarm{Master: true})
	save("w1", "", &store.Swarm{Join: "boss"})
	save("w2", "", &store.Swarm{Join: "w1"})
	save("other", "", &store.Swarm{Master: true})
	save("solo", "", nil)
	c := &Converger{Machines: &machine.Manager{Store: st}}
	for name, want := range map[string][]string{"lab": {"c-1", "c-2"}, "boss": {"boss", "w1", "w2"}, "other": {"other"}} {
		got, err := c.checkNodes(name)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("checkNodes(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"solo", "w1", "nosuch"} {
		if _, err := c.checkNodes(name); err == nil || !strings.Contains(err.Error(), "nor a swarm master") {
			t.Errorf("checkNodes(%s): %v", name, err)
		}
	}
}
