package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// labArchive builds (once) the docker-save archive with registry:2 and
// busybox:latest that the lab's hosts load, since nothing can be pulled.
func labArchive(t testing.TB) string {
	t.Helper()
	r := run(t, 10*time.Minute, "bash", labScript(), "archive")
	if r.code != 0 {
		t.Fatalf("lab archive: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// dockerEnv runs the docker CLI of this machine with `machine env`'s
// variables, as a user who typed eval "$(machine env NAME)" would.
func (s *shoal) dockerEnv(name string, args ...string) result {
	s.t.Helper()
	env := s.mustMachine("env", "--shell", "bash", name)
	// Run through bash so that the printed syntax itself is what is tested.
	script := env + "\ndocker " + shellJoin(args)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=", "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// TestSwarmWithRegistry: a master, a worker and a second manager, adopted
// over SSH as a non-root user, form a swarm with a registry every node
// trusts; `machine env` points the docker CLI at it over TLS.
func TestSwarmWithRegistry(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	ips := map[string]string{}
	for _, n := range []string{"m1", "w1", "m2"} {
		ips[n] = labHost(t, "e2e-sw-"+n, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-swarm"})
	}
	create := func(name string, extra ...string) result {
		args := append([]string{"create", "-d", "ssh", "--ssh-host", ips[name], "--ssh-user", "tester", "--ssh-key", priv,
			"--swarm-image-archive", archive}, extra...)
		return s.machine(append(args, name)...)
	}
	var outputs []string
	for _, step := range []struct {
		name  string
		extra []string
	}{
		{"m1", []string{"--swarm-master"}},
		{"w1", []string{"--swarm", "--swarm-join", "m1", "--swarm-label", "zone=b"}},
		{"m2", []string{"--swarm", "--swarm-join", "m1", "--swarm-manager"}},
	} {
		r := create(step.name, step.extra...)
		if r.code != 0 {
			t.Fatalf("create %s: %s", step.name, r)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}
	// Each create put the login user in the docker group and logged in
	// again for its engine: none went through sudo and a docker CLI.
	for _, n := range []string{"m1", "w1", "m2"} {
		if c := journalCount(t, "e2e-sw-"+n, "docker system dial-stdio"); c != 0 {
			t.Errorf("%s: the engine was reached through sudo and docker system dial-stdio %d times; want none", n, c)
		}
	}

	// 3 Ready nodes, 2 managers, seen through the TLS endpoint.
	r := s.dockerEnv("m1", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
	if r.code != 0 {
		t.Fatalf("docker node ls over TLS: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	managers := 0
	for _, l := range lines {
		if !strings.Contains(l, " Ready") {
			t.Errorf("node not Ready: %q", l)
		}
		if strings.HasSuffix(l, "Leader") || strings.HasSuffix(l, "Reachable") {
			managers++
		}
	}
	if len(lines) != 3 || managers != 2 {
		t.Fatalf("want 3 Ready nodes with 2 managers, got:\n%s", r.stdout)
	}
	if got := s.dockerEnv("m1", "node", "inspect", "w1", "--format", "{{index .Spec.Labels \"zone\"}}").stdout; strings.TrimSpace(got) != "b" {
		t.Errorf("w1's label zone=%q", got)
	}
	if env := s.mustMachine("env", "--shell", "bash", "m1"); !strings.Contains(env, `export DOCKER_HOST="tcp://`+ips["m1"]+`:2376"`) {
		t.Errorf("machine env: %s", env)
	}

	// The registry answers from every node, by name and by address.
	for _, n := range []string{"m1", "w1", "m2"} {
		for _, host := range []string{"m1", ips["m1"]} {
			if got := s.sshOut(n, "curl", "-fsS", "http://"+host+":5000/v2/"); got != "{}" {
				t.Errorf("%s: registry at %s answered %q", n, host, got)
			}
		}
	}
	// An image pushed from the worker runs as a 3-replica service.
	s.sshOut("w1", "docker", "tag", "busybox:latest", "m1:5000/e2e/bb:1")
	s.sshOut("w1", "docker", "push", "m1:5000/e2e/bb:1")
	if r := s.dockerEnv("m1", "service", "create", "-d", "--name", "web", "--replicas", "3", "--endpoint-mode", "dnsrr", "m1:5000/e2e/bb:1", "sleep", "3600"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := strings.TrimSpace(s.dockerEnv("m1", "service", "ls", "--filter", "name=web", "--format", "{{.Replicas}}").stdout)
		if got == "3/3" {
			break
		}
		if time.Now().After(deadline) {
			ps := s.dockerEnv("m1", "service", "ps", "web", "--no-trunc")
			t.Fatalf("web has %s replicas running:\n%s", got, ps)
		}
		time.Sleep(2 * time.Second)
	}

	// Again: same node IDs, same dockerd PIDs, nothing changed.
	ids := s.dockerEnv("m1", "node", "ls", "-q").stdout
	pids := map[string]string{}
	for _, n := range []string{"m1", "w1", "m2"} {
		pids[n] = s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker")
	}
	for _, step := range [][]string{{"m1", "--swarm-master"}, {"w1", "--swarm", "--swarm-join", "m1", "--swarm-label", "zone=b"}} {
		r := create(step[0], step[1:]...)
		if r.code != 0 || strings.Contains(r.stderr, " changed") && !strings.Contains(r.stderr, "create           changed") {
			t.Errorf("create %s again changed something or failed:\n%s", step[0], r)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}
	r = s.machine("provision", "m1", "w1", "m2")
	outputs = append(outputs, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("provision: %s", r)
	}
	if got := s.dockerEnv("m1", "node", "ls", "-q").stdout; got != ids {
		t.Errorf("node IDs changed:\n%s\nthen\n%s", ids, got)
	}
	for _, n := range []string{"m1", "w1", "m2"} {
		if got := s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker"); got != pids[n] {
			t.Errorf("%s: dockerd restarted (%s -> %s)", n, pids[n], got)
		}
	}

	// SWARM column.
	ls := s.mustMachine("ls", "--format", "{{.Name}}={{.Swarm}}")
	for _, want := range []string{"m1=m1 (master)", "w1=m1", "m2=m1"} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls SWARM column lacks %q:\n%s", want, ls)
		}
	}

	// Shell syntaxes.
	fish := s.mustMachine("env", "--shell", "fish", "m1")
	if !strings.Contains(fish, `set -gx DOCKER_HOST "tcp://`+ips["m1"]+`:2376";`) || !strings.Contains(fish, "eval (machine env m1)") {
		t.Errorf("fish syntax:\n%s", fish)
	}
	unset := s.mustMachine("env", "--unset", "--shell", "bash")
	for _, v := range []string{"unset DOCKER_TLS_VERIFY", "unset DOCKER_HOST", "unset DOCKER_CERT_PATH", "unset DOCKER_MACHINE_NAME"} {
		if !strings.Contains(unset, v) {
			t.Errorf("env --unset lacks %q:\n%s", v, unset)
		}
	}
	if ps := s.mustMachine("env", "--shell", "powershell", "m1"); !strings.Contains(ps, `$Env:DOCKER_HOST = "tcp://`) {
		t.Errorf("powershell syntax:\n%s", ps)
	}
	if cfg := s.mustMachine("config", "m1"); !strings.Contains(cfg, "--tlsverify") || !strings.Contains(cfg, "-H=tcp://"+ips["m1"]+":2376") {
		t.Errorf("config:\n%s", cfg)
	}

	// rm of a swarm node: it leaves and a manager forgets it; the adopted
	// host stays up.
	s.mustMachine("rm", "-y", "w1")
	if got := s.dockerEnv("m1", "node", "ls", "--format", "{{.Hostname}}").stdout; strings.Contains(got, "w1") {
		t.Errorf("w1 still in the node list after rm:\n%s", got)
	}
	if got := strings.TrimSpace(dockerExec(t, "e2e-sw-w1", "docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout); got != "inactive" {
		t.Errorf("w1 after rm: swarm state %q", got)
	}
	s.mustMachine("rm", "-y", "m2")
	if got := strings.TrimSpace(s.dockerEnv("m1", "node", "ls", "--format", "{{.Hostname}}").stdout); got != "m1" {
		t.Errorf("after removing m2 the node list is %q", got)
	}

	// No join token anywhere: output, logs, files.
	for _, o := range outputs {
		if strings.Contains(o, "SWMTKN") {
			t.Errorf("a join token was printed:\n%s", o)
		}
	}
	for path, data := range storageFiles(t, s.storage) {
		if bytes.Contains(data, []byte("SWMTKN")) {
			t.Errorf("%s holds a join token", filepath.Base(path))
		}
	}
}

// TestSwarmForeignSwarm: a host that is in another swarm is refused unless
// --swarm-force.
func TestSwarmForeignSwarm(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	ipA := labHost(t, "e2e-fs-a", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-fs"})
	ipB := labHost(t, "e2e-fs-b", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-fs"})
	// B starts its own swarm behind shoal's back.
	if r := dockerExec(t, "e2e-fs-b", "docker", "swarm", "init", "--advertise-addr", ipB); r.code != 0 {
		t.Fatalf("swarm init on b: %s", r)
	}
	s.mustMachine("create", "-d", "ssh", "--ssh-host", ipA, "--ssh-user", "tester", "--ssh-key", priv, "--swarm-master", "--swarm-registry=false", "a")
	r := s.machine("create", "-d", "ssh", "--ssh-host", ipB, "--ssh-user", "tester", "--ssh-key", priv, "--swarm", "--swarm-join", "a", "b")
	if r.code == 0 || !strings.Contains(r.stderr, "another swarm") || !strings.Contains(r.stderr, "--swarm-force") {
		t.Fatalf("joining a node of another swarm: want a refusal naming --swarm-force, got %s", r)
	}
	if got := strings.TrimSpace(dockerExec(t, "e2e-fs-b", "docker", "info", "--format", "{{.Swarm.ControlAvailable}}").stdout); got != "true" {
		t.Errorf("the refused node lost its own swarm (manager=%s)", got)
	}
	s.mustMachine("create", "-d", "ssh", "--ssh-host", ipB, "--ssh-user", "tester", "--ssh-key", priv, "--swarm", "--swarm-join", "a", "--swarm-force", "b")
	if got := s.sshOut("a", "docker", "node", "ls", "--format", "{{.Hostname}}"); !strings.Contains(got, "b") {
		t.Errorf("b did not join a's swarm with --swarm-force: %q", got)
	}
}
