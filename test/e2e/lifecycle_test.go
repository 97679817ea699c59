package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The cluster's life after day one, on container hosts made by the docker
// driver: a locked leader, a quorum-losing change refused, replaced hosts,
// scale down with a service that keeps its replicas.

const (
	lcNetwork = "shoal-lab-lc"
	// lcSubnet is the test's own bridge, with a subnet of its choosing so
	// that a host can be given another address (--ip needs one).
	lcSubnet = "172.31.237.0/24"
)

func lifecycleFile(t *testing.T, archive string) string {
	t.Helper()
	text := fmt.Sprintf(`cluster "lc" {}

variable "managers" { default = 3 }
variable "workers" { default = 2 }
variable "auto_unlock" { default = false }

defaults {
  driver = "docker"
  docker {
    image   = "shoal/node:bookworm"
    network = %q
  }
  image_archives = [%q]
}

machine "lc-m" {
  count = var.managers
  role  = "manager"
}

machine "lc-w" {
  count = var.workers
  role  = "worker"
}

swarm {
  autolock    = true
  auto_unlock = var.auto_unlock
}

registry {
  node = "lc-m-1"
}
`, lcNetwork, archive)
	path := filepath.Join(t.TempDir(), "lc.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostExec runs a command inside a docker-driver host container.
func hostExec(t *testing.T, machineName string, cmd ...string) result {
	t.Helper()
	return dockerExec(t, "shoal-"+machineName, cmd...)
}

func mustHostExec(t *testing.T, machineName string, cmd ...string) string {
	t.Helper()
	r := hostExec(t, machineName, cmd...)
	if r.code != 0 {
		t.Fatalf("%s: %s: %s", machineName, strings.Join(cmd, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

func swarmField(t *testing.T, machineName, format string) string {
	t.Helper()
	return mustHostExec(t, machineName, "docker", "info", "--format", format)
}

// runningReplicas counts the service's running tasks as a manager sees them
// (-1 when the manager cannot tell).
func runningReplicas(t *testing.T, mgr, service string) int {
	r := hostExec(t, mgr, "docker", "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
	if r.code != 0 {
		return -1
	}
	n := 0
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "Running") {
			n++
		}
	}
	return n
}

func waitReplicas(t *testing.T, mgr, service string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if runningReplicas(t, mgr, service) == want {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: service %s does not run %d replicas: %s", mgr, service, want,
		hostExec(t, mgr, "docker", "service", "ps", service))
}

// nodeTable is `docker node ls` as hostname -> "status availability manager-status".
func nodeTable(t *testing.T, mgr string) map[string]string {
	t.Helper()
	out := mustHostExec(t, mgr, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			if _, dup := m[f[0]]; dup {
				m[f[0]+"#dup"] = strings.Join(f[1:], " ")
				continue
			}
			m[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return m
}

func TestClusterLifecycle(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	file := lifecycleFile(t, archive)
	all := []string{"lc-m-1", "lc-m-2", "lc-m-3", "lc-w-1", "lc-w-2"}
	t.Cleanup(func() {
		s.cluster("down", "lc")
		for _, n := range all {
			run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+n)
		}
		run(t, time.Minute, "docker", "network", "rm", lcNetwork)
	})
	run(t, time.Minute, "docker", "network", "rm", lcNetwork)
	if r := run(t, time.Minute, "docker", "network", "create", "--subnet", lcSubnet, lcNetwork); r.code != 0 {
		t.Fatalf("docker network create: %s", r)
	}
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	mustHostExec(t, "lc-m-1", "docker", "service", "create", "-d", "--name", "web", "--replicas", "4",
		"--endpoint-mode", "dnsrr", "busybox:latest", "sleep", "86400")
	waitReplicas(t, "lc-m-1", "web", 4, 2*time.Minute)
	clusterID := swarmField(t, "lc-m-2", "{{.Swarm.Cluster.ID}}")
	ids := mustHostExec(t, "lc-m-2", "docker", "node", "ls", "-q")

	t.Run("locked leader", func(t *testing.T) {
		// Any restart of dockerd locks an autolock manager.
		mustHostExec(t, "lc-m-1", "systemctl", "restart", "docker")
		if got := swarmField(t, "lc-m-1", "{{.Swarm.LocalNodeState}}"); got != "locked" {
			t.Fatalf("the leader should come back locked, is %q", got)
		}
		st := s.cluster("status", "lc")
		if !strings.Contains(st.stdout, "locked") {
			t.Errorf("cluster status should show the locked manager:\n%s", st)
		}
		if ls := s.machine("ls"); !strings.Contains(ls.stdout, "locked") {
			t.Errorf("machine ls should show the locked manager:\n%s", ls)
		}
		if p := s.cluster("plan", file); !strings.Contains(p.stdout, "locked") || !strings.Contains(p.stdout, "cluster unlock") {
			t.Errorf("cluster plan should show the locked manager and name cluster unlock:\n%s", p)
		}
		// Provisioning it again never touches its membership.
		prov := s.machine("provision", "lc-m-1")
		t.Logf("machine provision of a locked leader: %s", prov)
		if !strings.Contains(prov.stderr+prov.stdout, "locked") {
			t.Errorf("machine provision should say the node is locked:\n%s", prov)
		}
		if got := swarmField(t, "lc-m-1", "{{.Swarm.LocalNodeState}}"); got != "locked" {
			t.Errorf("after machine provision the leader is %q, want it still locked (never left)", got)
		}
		up := s.cluster("up", file)
		if up.code == 0 || !strings.Contains(up.stderr, "cluster unlock lc") {
			t.Errorf("cluster up on a locked manager should fail naming 'cluster unlock lc':\n%s", up)
		}
		if r := s.cluster("unlock", "lc"); r.code != 0 || !strings.Contains(r.stdout, "lc-m-1") {
			t.Fatalf("cluster unlock: %s", r)
		}
		if got := swarmField(t, "lc-m-1", "{{.Swarm.LocalNodeState}}"); got != "active" {
			t.Errorf("after cluster unlock the leader is %q", got)
		}
		if got := swarmField(t, "lc-m-1", "{{.Swarm.Cluster.ID}}"); got != clusterID {
			t.Errorf("cluster ID changed: %s -> %s", clusterID, got)
		}
		if got := mustHostExec(t, "lc-m-1", "docker", "node", "ls", "-q"); got != ids {
			t.Errorf("node IDs changed:\n%s\n->\n%s", ids, got)
		}
		waitReplicas(t, "lc-m-1", "web", 4, 2*time.Minute)
		for _, r := range []result{prov, up} {
			if strings.Contains(r.stdout+r.stderr, "SWMKEY") || strings.Contains(r.stdout+r.stderr, "SWMTKN") {
				t.Errorf("a swarm secret was printed:\n%s", r)
			}
		}
	})

	t.Run("quorum-losing change refused", func(t *testing.T) {
		// lc-m-2's engine stops: 2 of 3 managers are left. Removing lc-m-3
		// as well would leave 2 managers with 1 reachable.
		mustHostExec(t, "lc-m-2", "systemctl", "stop", "docker")
		before := nodeTable(t, "lc-m-1")
		plan := s.cluster("plan", "--var", "managers=2", file)
		if !strings.Contains(plan.stdout, "- lc-m-3") || !strings.Contains(plan.stdout, "quorum") {
			t.Errorf("plan should list lc-m-3 leaving and refuse for the quorum:\n%s", plan)
		}
		up := s.cluster("up", "--var", "managers=2", file)
		if up.code == 0 || !strings.Contains(up.stderr, "quorum") {
			t.Errorf("a quorum-losing change should be refused:\n%s", up)
		}
		if after := nodeTable(t, "lc-m-1"); len(after) != len(before) {
			t.Errorf("a refused change changed the swarm:\n%v\n->\n%v", before, after)
		}
		if hostExec(t, "lc-m-3", "true").code != 0 {
			t.Errorf("lc-m-3's host was removed by a refused change")
		}
		// Back again it is locked; up unlocks it itself with auto_unlock.
		mustHostExec(t, "lc-m-2", "systemctl", "start", "docker")
		if r := s.cluster("up", "--var", "auto_unlock=true", file); r.code != 0 {
			t.Fatalf("cluster up with auto_unlock: %s", r)
		}
		if got := swarmField(t, "lc-m-2", "{{.Swarm.LocalNodeState}}"); got != "active" {
			t.Errorf("lc-m-2 after up with auto_unlock: %q", got)
		}
	})

	t.Run("replace deleted hosts", func(t *testing.T) {
		for _, n := range []string{"lc-w-2", "lc-m-3"} {
			if r := run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+n); r.code != 0 {
				t.Fatalf("docker rm %s: %s", n, r)
			}
		}
		if p := s.cluster("plan", file); !strings.Contains(p.stdout, "the host is gone") {
			t.Errorf("plan should say the hosts are gone:\n%s", p)
		}
		if r := s.cluster("up", file); r.code != 0 {
			t.Fatalf("cluster up after deleting two hosts: %s", r)
		}
		nodes := nodeTable(t, "lc-m-1")
		if len(nodes) != 5 {
			t.Errorf("want 5 node entries, no stale ones:\n%v", nodes)
		}
		mgrs := 0
		for h, st := range nodes {
			if !strings.HasPrefix(st, "Ready") {
				t.Errorf("%s is %q", h, st)
			}
			if strings.Contains(st, "Leader") || strings.Contains(st, "Reachable") {
				mgrs++
			}
		}
		if mgrs != 3 {
			t.Errorf("want 3 managers:\n%v", nodes)
		}
		if got := swarmField(t, "lc-m-3", "{{.Swarm.Cluster.ID}}"); got != clusterID {
			t.Errorf("the replaced manager is in swarm %q, want %q", got, clusterID)
		}
	})

	t.Run("readdress", func(t *testing.T) {
		moved, oldAddr := map[string]string{}, map[string]string{}
		for i, n := range []string{"lc-w-1", "lc-m-2"} {
			old := strings.TrimSpace(s.mustMachine("ip", n))
			// The host comes back on its network with another address, as
			// after a new DHCP lease.
			if r := run(t, time.Minute, "docker", "network", "disconnect", lcNetwork, "shoal-"+n); r.code != 0 {
				t.Fatalf("network disconnect %s: %s", n, r)
			}
			ip := fmt.Sprintf("172.31.237.%d", 200+i)
			if r := run(t, time.Minute, "docker", "network", "connect", "--ip", ip, lcNetwork, "shoal-"+n); r.code != 0 {
				t.Fatalf("network connect %s: %s", n, r)
			}
			if ip == old {
				t.Fatalf("%s had %s already: the test could not change its address", n, old)
			}
			moved[n], oldAddr[n] = ip, old
		}
		plan := s.cluster("plan", file)
		for n := range moved {
			if !strings.Contains(plan.stdout, n+" (") || !strings.Contains(plan.stdout, "readdress") {
				t.Errorf("plan should say %s is readdressed:\n%s", n, plan)
			}
		}
		// The worker's engine still advertises its old address: the check
		// names that, not a firewall.
		if r := s.cluster("check", file); r.code != 1 || !strings.Contains(r.stdout, "lc-w-1's engine advertises "+oldAddr["lc-w-1"]) || strings.Contains(r.stdout, "4789/udp (VXLAN) is dropped") {
			t.Errorf("cluster check before the readdress: want exit 1 naming lc-w-1's stale address: %s", r)
		}
		if r := s.cluster("up", file); r.code != 0 {
			t.Fatalf("cluster up after address changes: %s", r)
		}
		for _, host := range all {
			for n, ip := range moved {
				if host == n {
					continue // a host names itself at 127.0.1.1
				}
				got := strings.Fields(mustHostExec(t, host, "getent", "hosts", n))
				if len(got) == 0 || got[0] != ip {
					t.Errorf("%s resolves %s to %v, want %s", host, n, got, ip)
				}
			}
			hosts := mustHostExec(t, host, "cat", "/etc/hosts")
			for n, old := range oldAddr {
				if strings.Contains(hosts, old+"\t") || strings.Contains(hosts, old+" ") {
					t.Errorf("%s's /etc/hosts still has %s's old address %s:\n%s", host, n, old, hosts)
				}
			}
		}
		for n := range moved {
			if r := s.dockerEnv(n, "info", "--format", "{{.Swarm.LocalNodeState}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "active" {
				t.Errorf("machine env of %s over TLS at its new address: %s", n, r)
			}
		}
		if got := mustHostExec(t, "lc-m-1", "docker", "node", "inspect", "lc-m-2", "--format", "{{.ManagerStatus.Addr}}"); !strings.HasPrefix(got, moved["lc-m-2"]+":") {
			t.Errorf("the swarm reaches lc-m-2 at %s, want %s", got, moved["lc-m-2"])
		}
		nodes := nodeTable(t, "lc-m-1")
		mgrs := 0
		for h, st := range nodes {
			if !strings.HasPrefix(st, "Ready") {
				t.Errorf("%s is %q after readdress", h, st)
			}
			if strings.Contains(st, "Leader") || strings.Contains(st, "Reachable") {
				mgrs++
			}
		}
		if len(nodes) != 5 || mgrs != 3 {
			t.Errorf("want 5 Ready nodes with 3 managers after readdress:\n%v", nodes)
		}
	})

	t.Run("scale down", func(t *testing.T) {
		// The phases before moved tasks around; spread them again, one per
		// node as at creation (a drain moves all of a node's tasks at once).
		mustHostExec(t, "lc-m-1", "docker", "service", "update", "--force", "--detach=false", "-q", "web")
		waitReplicas(t, "lc-m-1", "web", 4, 2*time.Minute)
		t.Logf("placement before scale down:\n%s", mustHostExec(t, "lc-m-1", "docker", "service", "ps", "web",
			"--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}"))
		plan := s.cluster("plan", "--var", "managers=2", "--var", "workers=1", file)
		for _, want := range []string{"- lc-m-3 (manager): drain, leave, remove", "- lc-w-2 (worker): drain, leave, remove", "--var managers=2 --var workers=1"} {
			if !strings.Contains(plan.stdout, want) {
				t.Errorf("plan should say %q:\n%s", want, plan)
			}
		}
		// Sample the service every second while up runs.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		minSeen := 4
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				if n := runningReplicas(t, "lc-m-1", "web"); n >= 0 && n < minSeen {
					minSeen = n
				}
			}
		}()
		up := s.cluster("up", "--var", "managers=2", "--var", "workers=1", file)
		close(stop)
		wg.Wait()
		if up.code != 0 {
			t.Fatalf("scale down: %s", up)
		}
		if !strings.Contains(up.stdout+up.stderr, "2 managers tolerate no loss") {
			t.Errorf("scale down to 2 managers should warn that they tolerate no loss:\n%s", up)
		}
		if minSeen < 3 {
			t.Errorf("the service fell to %d running replicas during scale down", minSeen)
		}
		waitReplicas(t, "lc-m-1", "web", 4, 2*time.Minute)
		nodes := nodeTable(t, "lc-m-1")
		mgrs := 0
		for h, st := range nodes {
			if strings.Contains(st, "Leader") || strings.Contains(st, "Reachable") {
				mgrs++
			}
			if h == "lc-m-3" || h == "lc-w-2" {
				t.Errorf("%s is still in the swarm", h)
			}
		}
		if len(nodes) != 3 || mgrs != 2 {
			t.Errorf("want 3 nodes with 2 managers:\n%v", nodes)
		}
		for _, gone := range []string{"lc-m-3", "lc-w-2"} {
			if r := run(t, time.Minute, "docker", "inspect", "shoal-"+gone); r.code == 0 {
				t.Errorf("%s's container is still there", gone)
			}
		}
		if ls := s.machine("ls", "-q"); strings.Contains(ls.stdout, "lc-m-3") {
			t.Errorf("lc-m-3 is still in the store:\n%s", ls.stdout)
		}
		again := s.cluster("up", "--var", "managers=2", "--var", "workers=1", file)
		if again.code != 0 || !strings.Contains(again.stdout, "nothing to change") {
			t.Errorf("a second run after scale down should change nothing:\n%s", again)
		}
	})
}
