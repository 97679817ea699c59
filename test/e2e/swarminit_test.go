package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestSwarmInitSettings: a new cluster with swarm { default_addr_pool,
// overlay_mtu, data_path_port } gets them: the swarm's pool and VXLAN
// port, and an ingress network with the MTU and a subnet from the pool.
// A second run changes nothing and has nothing to report; a changed MTU on
// the existing swarm is reported, never applied by making it anew.
func TestSwarmInitSettings(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-swinit"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	ips := map[string]string{
		"sim1": labHost(t, "e2e-swinit-m1", hostOpts{user: "tester", pubkey: pub, network: network}),
		"siw1": labHost(t, "e2e-swinit-w1", hostOpts{user: "tester", pubkey: pub, network: network}),
	}
	file := adoptedClusterFile(t, "swinit", priv, archive, []string{"sim1"}, []string{"siw1"}, ips)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "\nswarm {\n  default_addr_pool = [\"10.123.0.0/16\"]\n  overlay_mtu = 1400\n  data_path_port = 4800\n}\n"...)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}

	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	info := s.sshOut("sim1", "docker", "info", "--format", "'{{.Swarm.Cluster.DefaultAddrPool}} {{.Swarm.Cluster.SubnetSize}} {{.Swarm.Cluster.DataPathPort}}'")
	if strings.TrimSpace(info) != "[10.123.0.0/16] 24 4800" {
		t.Errorf("swarm pool, subnet size, data path port: %q, want [10.123.0.0/16] 24 4800", info)
	}
	ing := s.sshOut("sim1", "docker", "network", "inspect", "ingress", "--format",
		"'{{index .Options \"com.docker.network.driver.mtu\"}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Ingress}}'")
	f := strings.Fields(ing)
	if len(f) != 3 || f[0] != "1400" || !strings.HasPrefix(f[1], "10.123.") || f[2] != "true" {
		t.Errorf("ingress: %q, want MTU 1400, a subnet of 10.123.0.0/16, ingress true", ing)
	}
	// An overlay network made now gets its subnet from the pool too.
	s.sshOut("sim1", "docker", "network", "create", "-d", "overlay", "sinet")
	if sub := s.sshOut("sim1", "docker", "network", "inspect", "sinet", "--format", "'{{range .IPAM.Config}}{{.Subnet}}{{end}}'"); !strings.HasPrefix(strings.TrimSpace(sub), "10.123.") {
		t.Errorf("a new overlay network's subnet %q is not from the pool", sub)
	}

	again := s.cluster("up", file)
	if again.code != 0 {
		t.Fatalf("cluster up again: %s", again)
	}
	if strings.Contains(again.stderr, "overlay_mtu is") || strings.Contains(again.stderr, "default_addr_pool is") {
		t.Errorf("the second run reported a difference:\n%s", again.stderr)
	}
	if id := s.sshOut("sim1", "docker", "network", "inspect", "ingress", "--format", "'{{index .Options \"com.docker.network.driver.mtu\"}}'"); strings.TrimSpace(id) != "1400" {
		t.Errorf("ingress MTU after the second run: %q", id)
	}

	// Asked for another MTU: reported, the swarm and its ingress stay.
	changed := strings.Replace(string(b), "overlay_mtu = 1400", "overlay_mtu = 1300", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	third := s.cluster("up", file)
	if third.code != 0 {
		t.Fatalf("cluster up with another MTU: %s", third)
	}
	if !strings.Contains(third.stderr+third.stdout, "overlay_mtu is 1400, not 1300") {
		t.Errorf("cluster up did not report the ingress MTU differs:\n%s", third.stderr)
	}
	if id := s.sshOut("sim1", "docker", "network", "inspect", "ingress", "--format", "'{{index .Options \"com.docker.network.driver.mtu\"}}'"); strings.TrimSpace(id) != "1400" {
		t.Errorf("ingress MTU changed on an existing swarm: %q", id)
	}
}
