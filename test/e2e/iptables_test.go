package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestIptablesDropPolicy: a worker whose iptables INPUT policy is DROP
// (loopback, established and SSH let in; no firewalld or ufw) and that has
// an administrator's rule dropping 4789/udp from one address. cluster up
// opens the swarm's ports to the cluster's nodes only, in shoal's chain at
// the end of INPUT: the worker joins, a task on it answers a ping over an
// overlay network, the administrator's rule is still there (and reported),
// and a second run changes nothing. The swarm's VXLAN port is 4800
// (data_path_port), which the chain lets in.
func TestIptablesDropPolicy(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-ipt"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	ips := map[string]string{
		"iptm1": labHost(t, "e2e-ipt-m1", hostOpts{user: "tester", pubkey: pub, network: network}),
		"iptw1": labHost(t, "e2e-ipt-w1", hostOpts{user: "tester", pubkey: pub, network: network}),
	}
	const adminRule = "-A INPUT -s 203.0.113.9/32 -p udp -m udp --dport 4789 -j DROP"
	setup := "iptables -A INPUT -i lo -j ACCEPT && iptables -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && " +
		"iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables " + adminRule + " && iptables -P INPUT DROP && iptables -S INPUT"
	if r := dockerExec(t, "e2e-ipt-w1", "sh", "-c", setup); r.code != 0 {
		t.Fatalf("setting up iptables: %s", r)
	}
	file := adoptedClusterFile(t, "ipt", priv, archive, []string{"iptm1"}, []string{"iptw1"}, ips)
	// Swarm's VXLAN on a port of its own: the chain must let that in.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, append(b, "\nswarm {\n  data_path_port = 4800\n}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.cluster("up", file)
	if r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	if !strings.Contains(r.stderr+r.stdout, adminRule) {
		t.Errorf("cluster up did not report the administrator's rule on a swarm port:\n%s", r.stderr)
	}
	input := dockerExec(t, "e2e-ipt-w1", "iptables", "-S", "INPUT").stdout
	lines := strings.Split(strings.TrimSpace(input), "\n")
	if !strings.Contains(input, adminRule) || lines[len(lines)-1] != "-A INPUT -j SHOAL-SWARM" || !strings.HasPrefix(input, "-P INPUT DROP") {
		t.Errorf("INPUT after cluster up (want the policy DROP, the administrator's rule, shoal's chain last):\n%s", input)
	}
	chain := dockerExec(t, "e2e-ipt-w1", "iptables", "-S", "SHOAL-SWARM").stdout
	if !strings.Contains(chain, "-s "+ips["iptm1"]+"/32") || strings.Count(chain, "-j ACCEPT") != 4 || !strings.Contains(chain, "4800") {
		t.Errorf("SHOAL-SWARM: want the two nodes' tcp and udp rules:\n%s", chain)
	}
	if en := dockerExec(t, "e2e-ipt-w1", "systemctl", "is-enabled", "shoal-swarm-iptables.service"); strings.TrimSpace(en.stdout) != "enabled" {
		t.Errorf("the boot unit is not enabled: %s", en)
	}

	// Data plane through the DROP policy: VXLAN (4789/udp) and gossip in.
	s.sshOut("iptm1", "docker", "network", "create", "-d", "overlay", "--attachable", "iptnet")
	s.sshOut("iptm1", "docker", "service", "create", "-d", "--name", "iptping", "--network", "iptnet",
		"--endpoint-mode", "dnsrr", "--constraint", "node.hostname==iptw1", "busybox:latest", "sleep", "3600")
	var taskIP string
	for deadline := time.Now().Add(2 * time.Minute); taskIP == ""; time.Sleep(2 * time.Second) {
		if id := strings.TrimSpace(s.sshOut("iptw1", "docker", "ps", "-q", "--filter", "name=iptping")); id != "" {
			taskIP = strings.TrimSpace(s.sshOut("iptw1", "docker", "inspect", "-f", "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'", id))
		}
		if taskIP == "" && time.Now().After(deadline) {
			t.Fatalf("the iptping task did not start on iptw1:\n%s", s.sshOut("iptm1", "docker", "service", "ps", "--no-trunc", "iptping"))
		}
	}
	var ping result
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(3 * time.Second) {
		ping = s.machine("ssh", "iptm1", "--", "docker", "run", "--rm", "--network", "iptnet", "busybox:latest", "ping", "-c", "2", "-W", "2", taskIP)
		if ping.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if ping.code != 0 {
		t.Errorf("the manager cannot reach the task on the DROP-policy worker (%s) over the overlay: %s", taskIP, ping)
	}

	again := s.cluster("up", file)
	if again.code != 0 {
		t.Fatalf("cluster up again: %s", again)
	}
	if after := dockerExec(t, "e2e-ipt-w1", "iptables", "-S", "INPUT").stdout; after != input {
		t.Errorf("INPUT changed on a second run:\n%s\nthen\n%s", input, after)
	}
}
