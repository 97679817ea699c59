package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestFirewallUFW: a Debian host with ufw active (default deny incoming,
// only OpenSSH allowed) gets Swarm's ports opened by `machine create`, and
// still joins a swarm: a task on it answers a ping over an overlay network
// from the master, which needs VXLAN (4789/udp) in through ufw.
func TestFirewallUFW(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-fw"
	// Registered first so that it runs last, after the hosts are gone.
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	masterIP := labHost(t, "e2e-fw-master", hostOpts{user: "tester", pubkey: pub, network: network})
	ufwIP := labHost(t, "e2e-fw-ufw", hostOpts{user: "tester", pubkey: pub, network: network})

	// ufw is not in the lab image: it comes from the Debian mirror, which
	// the lab's containers reach (the image carries apt lists).
	if r := dockerExec(t, "e2e-fw-ufw", "sh", "-c",
		"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q ufw || { apt-get update -q && apt-get install -y -q ufw; }"); r.code != 0 {
		t.Fatalf("installing ufw on the lab host (needs the Debian mirror): %s", r)
	}
	if r := dockerExec(t, "e2e-fw-ufw", "sh", "-c", "ufw allow OpenSSH && ufw --force enable && ufw status verbose"); r.code != 0 {
		t.Fatalf("enabling ufw: %s", r)
	} else if !strings.Contains(r.stdout, "Status: active") || !strings.Contains(r.stdout, "deny (incoming)") {
		t.Fatalf("ufw is not active with deny incoming:\n%s", r.stdout)
	}

	create := func(name, ip string, extra ...string) {
		t.Helper()
		args := append([]string{"create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv,
			"--swarm-image-archive", archive}, extra...)
		s.mustMachine(append(args, name)...)
	}
	create("fw-master", masterIP, "--swarm-master", "--swarm-registry=false")
	create("fw-ufw", ufwIP, "--swarm", "--swarm-join", "fw-master")

	// The ports are open, each once, and SSH through the OpenSSH profile
	// was not added again.
	status := s.sshOut("fw-ufw", "sudo", "ufw", "status")
	t.Logf("ufw status after create:\n%s", status)
	for _, p := range []string{"2376/tcp", "2377/tcp", "7946/tcp", "7946/udp", "4789/udp"} {
		if n := countRule(status, p); n != 1 {
			t.Errorf("ufw has %d IPv4 rules allowing %s, want 1", n, p)
		}
	}
	if countRule(status, "22/tcp") != 0 {
		t.Errorf("22/tcp was added although OpenSSH allows it already")
	}

	// Both nodes are Ready in one swarm.
	nodes := s.sshOut("fw-master", "docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'")
	if !strings.Contains(nodes, "fw-ufw Ready") || !strings.Contains(nodes, "fw-master Ready") {
		t.Fatalf("want fw-master and fw-ufw Ready, got:\n%s", nodes)
	}

	// Data plane through ufw: a task on the ufw node answers a ping from a
	// container on the master, over the overlay network.
	s.sshOut("fw-master", "docker", "network", "create", "-d", "overlay", "--attachable", "fwnet")
	s.sshOut("fw-master", "docker", "service", "create", "-d", "--name", "fwping", "--network", "fwnet",
		"--endpoint-mode", "dnsrr", "--constraint", "node.hostname==fw-ufw", "busybox:latest", "sleep", "3600")
	var taskIP string
	deadline := time.Now().Add(2 * time.Minute)
	for taskIP == "" {
		id := strings.TrimSpace(s.sshOut("fw-ufw", "docker", "ps", "-q", "--filter", "name=fwping"))
		if id != "" {
			taskIP = strings.TrimSpace(s.sshOut("fw-ufw", "docker", "inspect", "-f", "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'", id))
		}
		if taskIP == "" {
			if time.Now().After(deadline) {
				t.Fatalf("the fwping task did not start on fw-ufw:\n%s", s.sshOut("fw-master", "docker", "service", "ps", "--no-trunc", "fwping"))
			}
			time.Sleep(2 * time.Second)
		}
	}
	// The overlay's peer tables take a moment to reach the master.
	var ping result
	deadline = time.Now().Add(time.Minute)
	for {
		ping = s.machine("ssh", "fw-master", "--", "docker", "run", "--rm", "--network", "fwnet", "busybox:latest", "ping", "-c", "2", "-W", "2", taskIP)
		if ping.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if ping.code != 0 {
		t.Errorf("the master cannot reach the task on the ufw node (%s) over the overlay: %s\nufw:\n%s", taskIP, ping, status)
	}

	// Again: nothing to open, nothing changed.
	r := s.machine("provision", "fw-ufw")
	if r.code != 0 {
		t.Fatalf("provision again: %s", r)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "firewall") && strings.Contains(l, "changed") {
			t.Errorf("a second provisioning changed the firewall: %s", l)
		}
	}
	if again := s.sshOut("fw-ufw", "sudo", "ufw", "status"); again != status {
		t.Errorf("ufw rules changed on a second run:\n%s\nthen\n%s", status, again)
	}
}

// countRule counts the IPv4 ALLOW rules of `ufw status` for port.
func countRule(status, port string) int {
	n := 0
	for _, l := range strings.Split(status, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == port && f[1] == "ALLOW" {
			n++
		}
	}
	return n
}
