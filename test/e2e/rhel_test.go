package e2e

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFirewalldZone: a Debian host with firewalld active and its interface
// in the internal zone (not the default, public) joins a swarm and carries
// overlay traffic: shoal opens swarm's ports in the zone of the interface
// that carries swarm traffic, in the runtime and permanent configuration,
// and never reloads (a runtime-only rule the administrator added stays).
func TestFirewalldZone(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-el-fw"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	masterIP := labHost(t, "e2e-el-fw-master", hostOpts{user: "tester", pubkey: pub, network: network})
	fwIP := labHost(t, "e2e-el-fw", hostOpts{user: "tester", pubkey: pub, network: network})

	// firewalld is not in the lab image: it comes from the Debian mirror.
	if r := dockerExec(t, "e2e-el-fw", "sh", "-c",
		"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q firewalld || { apt-get update -q && apt-get install -y -q firewalld; }"); r.code != 0 {
		t.Fatalf("installing firewalld on the lab host (needs the Debian mirror): %s", r)
	}
	// eth0 goes to the internal zone (ssh is open there), for now and for
	// good; an administrator's runtime-only rule is added besides. dockerd
	// restarts first: the first dockerd that finds firewalld running makes
	// its "docker" zone and reloads firewalld itself, which would drop the
	// rule before shoal ever ran.
	setup := "systemctl start firewalld && systemctl restart docker && firewall-cmd --get-zones | grep -qw docker && " +
		"firewall-cmd --zone=internal --change-interface=eth0 && " +
		"firewall-cmd --permanent --zone=internal --change-interface=eth0 && firewall-cmd --zone=internal --add-port=12345/tcp && " +
		"firewall-cmd --get-default-zone && firewall-cmd --get-zone-of-interface=eth0"
	if r := dockerExec(t, "e2e-el-fw", "sh", "-c", setup); r.code != 0 {
		t.Fatalf("setting up firewalld: %s", r)
	} else if f := strings.Fields(r.stdout); len(f) < 2 || f[len(f)-2] != "public" || f[len(f)-1] != "internal" {
		t.Fatalf("want default zone public and eth0 in internal, got %q", r.stdout)
	}
	// The zone blocks what it does not list: swarm's gossip port is shut.
	if r := dockerExec(t, "e2e-el-fw", "firewall-cmd", "--zone=internal", "--query-port=7946/tcp"); r.code == 0 {
		t.Fatalf("7946/tcp is open in internal before shoal ran")
	}

	create := func(name, ip string, extra ...string) result {
		t.Helper()
		args := append([]string{"create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv,
			"--swarm-image-archive", archive}, extra...)
		r := s.machine(append(args, name)...)
		if r.code != 0 {
			t.Fatalf("machine create %s: %s", name, r)
		}
		return r
	}
	create("elfw-master", masterIP, "--swarm-master", "--swarm-registry=false")
	create("elfw-node", fwIP, "--swarm", "--swarm-join", "elfw-master")

	for _, perm := range []string{"", "--permanent"} {
		args := []string{"sudo", "firewall-cmd", "--zone=internal", "--list-ports"}
		if perm != "" {
			args = append(args, perm)
		}
		ports := strings.Fields(s.sshOut("elfw-node", args...))
		for _, p := range []string{"2376/tcp", "2377/tcp", "7946/tcp", "7946/udp", "4789/udp"} {
			if !contains(ports, p) {
				t.Errorf("internal zone %s: %s is not open (%v)", perm, p, ports)
			}
		}
		pub := s.sshOut("elfw-node", "sudo", "firewall-cmd", "--zone=public", "--list-ports", perm)
		if strings.Contains(pub, "4789/udp") {
			t.Errorf("swarm's ports went to the public zone, which eth0 is not in: %s", pub)
		}
	}
	if r := dockerExec(t, "e2e-el-fw", "firewall-cmd", "--zone=internal", "--query-port=12345/tcp"); r.code != 0 {
		t.Errorf("the administrator's runtime-only rule 12345/tcp is gone (a reload?): %s", r)
	}

	nodes := s.sshOut("elfw-master", "docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'")
	if !strings.Contains(nodes, "elfw-node Ready") {
		t.Fatalf("want elfw-node Ready, got:\n%s", nodes)
	}
	// Data plane through the internal zone: VXLAN (4789/udp) in.
	s.sshOut("elfw-master", "docker", "network", "create", "-d", "overlay", "--attachable", "elfwnet")
	s.sshOut("elfw-master", "docker", "service", "create", "-d", "--name", "elfwping", "--network", "elfwnet",
		"--endpoint-mode", "dnsrr", "--constraint", "node.hostname==elfw-node", "busybox:latest", "sleep", "3600")
	var taskIP string
	deadline := time.Now().Add(2 * time.Minute)
	for taskIP == "" {
		id := strings.TrimSpace(s.sshOut("elfw-node", "docker", "ps", "-q", "--filter", "name=elfwping"))
		if id != "" {
			taskIP = strings.TrimSpace(s.sshOut("elfw-node", "docker", "inspect", "-f", "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'", id))
		}
		if taskIP == "" {
			if time.Now().After(deadline) {
				t.Fatalf("the elfwping task did not start on elfw-node:\n%s", s.sshOut("elfw-master", "docker", "service", "ps", "--no-trunc", "elfwping"))
			}
			time.Sleep(2 * time.Second)
		}
	}
	var ping result
	deadline = time.Now().Add(time.Minute)
	for {
		ping = s.machine("ssh", "elfw-master", "--", "docker", "run", "--rm", "--network", "elfwnet", "busybox:latest", "ping", "-c", "2", "-W", "2", taskIP)
		if ping.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if ping.code != 0 {
		t.Errorf("the master cannot reach the task on the firewalld node (%s) over the overlay: %s", taskIP, ping)
	}

	// Again: nothing to open.
	r := s.machine("provision", "elfw-node")
	if r.code != 0 {
		t.Fatalf("provision again: %s", r)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "firewall") && strings.Contains(l, "changed") {
			t.Errorf("a second provisioning changed the firewall: %s", l)
		}
	}
}

// TestDpkgLockWait: another process holds dpkg's frontend lock for 20 s
// when shoal must install Docker; provisioning waits for it (saying so)
// and installs once it is free, instead of failing or running beside it.
func TestDpkgLockWait(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-el-lock"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	ip := labHost(t, "e2e-el-lock", hostOpts{user: "tester", pubkey: pub, network: network})

	// Docker must be installed for the lock to matter: take the lab image's
	// docker.io away (its data and configuration stay).
	if r := dockerExec(t, "e2e-el-lock", "sh", "-c", "systemctl stop docker docker.socket; export DEBIAN_FRONTEND=noninteractive; apt-get remove -y -q docker.io && ! command -v dockerd"); r.code != 0 {
		t.Fatalf("removing docker.io: %s", r)
	}
	// The holder writes the second it lets go.
	if r := dockerExec(t, "e2e-el-lock", "sh", "-c",
		"rm -f /tmp/released; systemd-run --unit shoal-e2e-lock sh -c 'flock /var/lib/dpkg/lock-frontend sleep 20; date +%s > /tmp/released' && sleep 1 && lslocks -n -o COMMAND,PATH"); r.code != 0 || !strings.Contains(r.stdout, "/var/lib/dpkg/lock-frontend") {
		t.Fatalf("holding the dpkg lock: %s", r)
	}
	start := time.Now()
	r := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv,
		"--engine-install", "distro", "--engine-tls=false", "ellock")
	if r.code != 0 {
		t.Fatalf("machine create with the dpkg lock held: %s", r)
	}
	t.Logf("create took %s", time.Since(start).Round(time.Second))
	if !strings.Contains(r.stderr, "waiting for the package lock") || !strings.Contains(r.stderr, "flock") {
		t.Errorf("create did not say it waited for the lock and who held it:\n%s", r.stderr)
	}
	// The holder may still be running if create did not wait for it.
	var released result
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(time.Second) {
		released = dockerExec(t, "e2e-el-lock", "cat", "/tmp/released")
		if released.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	rel, err := strconv.ParseInt(strings.TrimSpace(released.stdout), 10, 64)
	if err != nil {
		t.Fatalf("the lock holder did not finish: %s", released)
	}
	// apt's own log: the install started after the lock was let go.
	hist := dockerExec(t, "e2e-el-lock", "sh", "-c", "TZ=UTC0 grep -B1 -A3 'docker.io' /var/log/apt/history.log | grep Start-Date | tail -n 1")
	m := regexp.MustCompile(`Start-Date: (\S+  ?\S+)`).FindStringSubmatch(hist.stdout)
	if m == nil {
		t.Fatalf("no apt history of the docker.io install: %s", hist)
	}
	loc := dockerExec(t, "e2e-el-lock", "date", "+%z").stdout
	when, err := time.Parse("2006-01-02  15:04:05 -0700", strings.Join(strings.Fields(m[1]), "  ")+" "+strings.TrimSpace(loc))
	if err != nil {
		t.Fatalf("apt's start date %q: %v", m[1], err)
	}
	if when.Unix() < rel {
		t.Errorf("apt started installing at %s, before the lock was released at %s", when.UTC(), time.Unix(rel, 0).UTC())
	}
	if v := s.sshOut("ellock", "docker", "info", "--format", "'{{.ServerVersion}}'"); v == "" {
		t.Errorf("docker does not answer after the install")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestPurgeRestoresRepoFiles: `cluster down --purge` puts back the .repo
// files that os_mirror set aside and removes shoal's mirror file, on a real
// adopted host; other repository files stay byte for byte. The host is
// Debian, so os_mirror itself is not used there, and cluster up says so.
func TestPurgeRestoresRepoFiles(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	ips := map[string]string{"elpurge": labHost(t, "e2e-el-purge", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-el-purge"})}
	file := adoptedClusterFile(t, "elpurge", priv, archive, []string{"elpurge"}, nil, ips)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	withMirror := strings.Replace(string(b), "defaults {\n", "defaults {\n  engine {\n    os_mirror = \"https://vault.centos.org\"\n  }\n", 1)
	if withMirror == string(b) {
		t.Fatalf("could not add the engine block to:\n%s", b)
	}
	if err := os.WriteFile(file, []byte(withMirror), 0o644); err != nil {
		t.Fatal(err)
	}

	r := s.cluster("up", file)
	if r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	if !strings.Contains(r.stderr+r.stdout, "os_mirror is not used") {
		t.Errorf("cluster up did not say that os_mirror is not used on Debian:\n%s", r.stderr)
	}
	// What os_mirror leaves on a CentOS host, made by hand here.
	const orig = "[base]\nname=CentOS-$releasever - Base\nmirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=os\n"
	const other = "[epel]\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=epel-7&arch=$basearch\n"
	setup := "mkdir -p /etc/yum.repos.d && cd /etc/yum.repos.d && printf '%s' \"$1\" > CentOS-Base.repo.shoal-orig && printf '%s' \"$2\" > epel.repo && " +
		"printf '[base]\\nbaseurl=https://vault.centos.org/7.9.2009/os/$basearch/\\n' > shoal-os-mirror.repo"
	if r := dockerExec(t, "e2e-el-purge", "sh", "-c", setup, "sh", orig, other); r.code != 0 {
		t.Fatalf("setting up /etc/yum.repos.d: %s", r)
	}

	if r := s.cluster("down", "--purge", file); r.code != 0 {
		t.Fatalf("cluster down --purge: %s", r)
	}
	ls := dockerExec(t, "e2e-el-purge", "ls", "-A", "/etc/yum.repos.d")
	if got := strings.Fields(ls.stdout); strings.Join(got, " ") != "CentOS-Base.repo epel.repo" {
		t.Errorf("/etc/yum.repos.d after purge: %q, want CentOS-Base.repo epel.repo", got)
	}
	for name, want := range map[string]string{"CentOS-Base.repo": orig, "epel.repo": other} {
		if got := dockerExec(t, "e2e-el-purge", "cat", "/etc/yum.repos.d/"+name); got.stdout != want {
			t.Errorf("%s after purge: %q, want %q", name, got.stdout, want)
		}
	}
}

// TestFirewalldReloadKeepsRuntimeRules: firewalld runs and has no "docker"
// zone yet (dockerd started before it), and the administrator opened
// 9999/tcp in the runtime configuration only. `machine create` restarts
// dockerd, whose first start with firewalld makes Docker's zone and reloads
// firewalld: shoal puts the runtime-only rule back, and says so.
func TestFirewalldReloadKeepsRuntimeRules(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-fwkeep"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	ip := labHost(t, "e2e-fwkeep", hostOpts{user: "tester", pubkey: pub, network: network})

	if r := dockerExec(t, "e2e-fwkeep", "sh", "-c",
		"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q firewalld || { apt-get update -q && apt-get install -y -q firewalld; }"); r.code != 0 {
		t.Fatalf("installing firewalld on the lab host (needs the Debian mirror): %s", r)
	}
	setup := "systemctl start firewalld && firewall-cmd --add-port=9999/tcp && firewall-cmd --query-port=9999/tcp && " +
		"! firewall-cmd --permanent --query-port=9999/tcp && firewall-cmd --get-zones"
	if r := dockerExec(t, "e2e-fwkeep", "sh", "-c", setup); r.code != 0 {
		t.Fatalf("setting up firewalld: %s", r)
	} else if contains(strings.Fields(r.stdout), "docker") {
		t.Fatalf("firewalld has Docker's zone before shoal ran: %s", r.stdout)
	}

	r := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv, "fwkeep")
	if r.code != 0 {
		t.Fatalf("machine create: %s", r)
	}
	// dockerd did make its zone (so firewalld reloaded) ...
	if z := dockerExec(t, "e2e-fwkeep", "firewall-cmd", "--get-zones"); !contains(strings.Fields(z.stdout), "docker") {
		t.Fatalf("no docker zone after create: dockerd did not reload firewalld, the test shows nothing: %s", z)
	}
	// ... and the administrator's runtime-only rule is there, still only at runtime.
	if q := dockerExec(t, "e2e-fwkeep", "firewall-cmd", "--query-port=9999/tcp"); q.code != 0 {
		t.Errorf("the runtime-only 9999/tcp is gone after shoal's dockerd restart: %s\ncreate said:\n%s", q, r.stderr)
	}
	if q := dockerExec(t, "e2e-fwkeep", "firewall-cmd", "--permanent", "--query-port=9999/tcp"); q.code == 0 {
		t.Errorf("9999/tcp was made permanent; the administrator had it at runtime only")
	}
	if !strings.Contains(r.stderr+r.stdout, "firewalld-keep") || !strings.Contains(r.stderr+r.stdout, "9999/tcp") {
		t.Errorf("create did not say it put the runtime-only rule back:\n%s", r.stderr)
	}

	// The lab's kernel has no ip_vs module (no /lib/modules in the host):
	// nothing to load, and the summary says so; where the shared kernel
	// has it loaded already, nothing to say.
	if dockerExec(t, "e2e-fwkeep", "test", "-d", "/sys/module/ip_vs").code != 0 && !strings.Contains(r.stderr+r.stdout, "no ip_vs module") {
		t.Errorf("create did not say that the kernel has no ip_vs module:\n%s", r.stderr)
	}
	if dockerExec(t, "e2e-fwkeep", "test", "-e", "/etc/modules-load.d/shoal-ipvs.conf").code == 0 {
		t.Errorf("shoal-ipvs.conf was written on a host whose kernel has no ip_vs module")
	}

	// Again: the zone is there, nothing to keep.
	again := s.machine("provision", "fwkeep")
	if again.code != 0 {
		t.Fatalf("provision again: %s", again)
	}
	if strings.Contains(again.stderr, "firewalld-keep") && strings.Contains(again.stderr, "changed") {
		t.Errorf("a second provisioning put rules back again:\n%s", again.stderr)
	}
}
