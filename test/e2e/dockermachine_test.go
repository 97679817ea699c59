package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// machineEnv runs the machine binary with extra environment variables.
func (s *shoal) machineEnv(env []string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	full := append([]string{"--storage-path", s.storage, "--output", "plain"}, args...)
	cmd := exec.CommandContext(ctx, bin("machine"), full...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("machine %v: %v", args, err)
	}
	s.t.Logf("machine %s -> exit %d", strings.Join(args, " "), code)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// dockerMachineNet is the lab network of these tests.
const dockerMachineNet = "shoal-lab-dm"

// TestDockerMachineHabits: what a docker-machine user types, against two
// docker-driver machines: exit statuses and outputs as docker-machine's.
func TestDockerMachineHabits(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	names := []string{"e2e-dm-a", "e2e-dm-b"}
	// Last first: the network goes after the containers on it.
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", dockerMachineNet) })
	for _, n := range names {
		t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+n) })
	}
	// The network first, once: two creates at once would both make it.
	if r := run(t, time.Minute, "docker", "network", "create", dockerMachineNet); r.code != 0 && !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("network: %s", r)
	}
	var wg sync.WaitGroup
	results := make([]result, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"create", "-d", "docker", "--docker-network", dockerMachineNet}
			if n == "e2e-dm-b" {
				args = append(args, "--engine-opt", "log-level=warn", "--engine-opt", "max-concurrent-uploads=3",
					"--engine-storage-driver", "vfs", "--engine-env", `SHOAL_E2E_GREETING=hello "quoted" $HOME world`,
					"--tls-san", "dm-b.example", "--tls-san", "10.99.0.7")
			}
			results[i] = s.machine(append(args, n)...)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("create %s: %s", names[i], r)
		}
	}
	ipA := strings.TrimSpace(s.mustMachine("ip", "e2e-dm-a"))
	urlA := strings.TrimSpace(s.mustMachine("url", "e2e-dm-a"))
	// What eval "$(machine env e2e-dm-a)" leaves in the environment.
	envA := []string{"DOCKER_HOST=" + urlA, "DOCKER_MACHINE_NAME=e2e-dm-a", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + filepath.Join(s.storage, "certs")}

	t.Run("completion", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		out := s.mustMachine("__complete", "env", "")
		for _, n := range names {
			if !strings.Contains(out, n+"\n") {
				t.Errorf("__complete env lacks %s:\n%s", n, out)
			}
		}
		out = s.mustMachine("__complete", "ssh", "e2e-dm-b")
		if strings.Contains(out, "e2e-dm-a") || !strings.Contains(out, "e2e-dm-b") {
			t.Errorf("__complete ssh e2e-dm-b:\n%s", out)
		}
		out = s.mustMachine("__complete", "scp", "e2e-dm-a")
		if !strings.Contains(out, "e2e-dm-a:") {
			t.Errorf("__complete scp:\n%s", out)
		}
		for _, shell := range []string{"bash", "zsh", "fish"} {
			if r := s.machine("completion", shell); r.code != 0 || !strings.Contains(r.stdout, "__complete") {
				t.Errorf("completion %s: %s", shell, r)
			}
		}
	})

	t.Run("ssh", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		if r := s.machine("ssh", "e2e-dm-a", "ls", "-la", "/"); r.code != 0 || !strings.Contains(r.stdout, "etc") || !strings.Contains(r.stdout, "drwx") {
			t.Errorf("ssh NAME ls -la /: %s", r)
		}
		if r := s.machine("ssh", "e2e-dm-a", "df", "-h"); r.code != 0 || !strings.Contains(r.stdout, "Filesystem") || strings.Contains(r.stdout, "Usage:") {
			t.Errorf("ssh NAME df -h: %s", r)
		}
		if r := s.machine("ssh", "e2e-dm-a", "--", "echo", "dashdash"); r.code != 0 || strings.TrimSpace(r.stdout) != "dashdash" {
			t.Errorf("ssh NAME -- echo: %s", r)
		}
		if r := s.machine("ssh", "e2e-dm-a", "uname", "-s", "-n"); strings.TrimSpace(r.stdout) != "Linux e2e-dm-a" {
			t.Errorf("ssh NAME uname -s -n: %s", r)
		}
		if r := s.machine("ssh", "e2e-dm-a", "exit", "5"); r.code != 5 {
			t.Errorf("ssh NAME exit 5: %s", r)
		}
		// The remote shell expands what the local one was told not to.
		if r := s.machine("ssh", "e2e-dm-a", "echo", "$((6*7))"); strings.TrimSpace(r.stdout) != "42" {
			t.Errorf("ssh NAME echo $((6*7)): %s", r)
		}
		if r := s.machine("--native-ssh", "ssh", "e2e-dm-a", "true"); r.code != 0 {
			t.Errorf("--native-ssh: %s", r)
		}
		if r := s.machine("ssh", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Everything after NAME") {
			t.Errorf("ssh --help: %s", r)
		}
		if r := s.machine("ssh", "nothere", "ls"); r.code != 1 || !strings.Contains(r.stderr, `Docker machine "nothere" does not exist`) {
			t.Errorf("ssh to a missing machine: %s", r)
		}
	})

	t.Run("inspect-format", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		for f, want := range map[string]string{
			"{{.Driver.IPAddress}}": ipA, "{{.DriverName}}": "docker", "{{.Name}}": "e2e-dm-a",
			"{{.HostOptions.EngineOptions.TLSVerify}}": "true", "{{.Address}}": ipA,
			"{{.Driver.SSHPort}}": "22",
		} {
			if got := strings.TrimSpace(s.mustMachine("inspect", "--format", f, "e2e-dm-a")); got != want {
				t.Errorf("inspect --format %s = %q, want %q", f, got, want)
			}
		}
		var drv map[string]any
		mustJSON(t, s.mustMachine("inspect", "-f", "{{prettyjson .Driver}}", "e2e-dm-a"), &drv)
		if drv["IPAddress"] != ipA || drv["SSHUser"] == "" {
			t.Errorf("prettyjson .Driver: %v", drv)
		}
		var opts map[string]any
		mustJSON(t, s.mustMachine("inspect", "-f", "{{json .HostOptions.EngineOptions}}", "e2e-dm-b"), &opts)
		if opts["StorageDriver"] != "vfs" || len(toStrings(opts["ArbitraryFlags"])) != 2 {
			t.Errorf("json .HostOptions.EngineOptions of e2e-dm-b: %v", opts)
		}
		if r := s.machine("inspect", "-f", "{{.Nope", "e2e-dm-a"); r.code != 2 {
			t.Errorf("a broken template: %s", r)
		}
	})

	t.Run("ls", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		if got := strings.Fields(s.mustMachine("ls", "-q", "--timeout", "20")); strings.Join(got, ",") != "e2e-dm-a,e2e-dm-b" {
			t.Errorf("ls -q --timeout 20: %v", got)
		}
		if r := s.machine("ls", "--timeout", "5s", "-q"); r.code != 0 {
			t.Errorf("ls --timeout 5s: %s", r)
		}
		if r := s.machine("ls", "--timeout", "soon"); r.code != 2 {
			t.Errorf("ls --timeout soon: %s", r)
		}
		r := s.machineEnv(envA, "ls", "--format", "{{.Name}} {{.Active}} {{.DriverName}} {{.State}} {{.URL}}")
		want := "e2e-dm-a * docker Running " + urlA
		if r.code != 0 || !strings.Contains(r.stdout, want+"\n") || !strings.Contains(r.stdout, "e2e-dm-b - docker Running tcp://") {
			t.Errorf("ls --format, want a line %q: %s", want, r)
		}
		r = s.machineEnv(envA, "ls", "--format", "table {{.Name}}\t{{.ActiveHost}}\t{{.DockerVersion}}")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME ACTIVE_HOST DOCKER" ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "e2e-dm-a true v") {
			t.Errorf("ls --format table: %s", r)
		}
	})

	t.Run("active-version", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		if r := s.machineEnv(envA, "active"); r.code != 0 || strings.TrimSpace(r.stdout) != "e2e-dm-a" {
			t.Errorf("active: %s", r)
		}
		if r := s.machineEnv([]string{"DOCKER_HOST="}, "active"); r.code != 1 || !strings.Contains(r.stderr, "No active host found") {
			t.Errorf("active without DOCKER_HOST: %s", r)
		}
		want := s.sshOut("e2e-dm-a", "docker", "version", "--format", "'{{.Server.Version}}'")
		if got := strings.TrimSpace(s.mustMachine("version", "e2e-dm-a")); got != want || got == "" {
			t.Errorf("version e2e-dm-a = %q, want %q", got, want)
		}
		if got := s.mustMachine("version"); !strings.Contains(got, "machine") {
			t.Errorf("version: %q", got)
		}
	})

	t.Run("env", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		r := s.machineEnv([]string{"NO_PROXY=localhost", "no_proxy="}, "env", "--shell", "bash", "--no-proxy", "e2e-dm-a")
		if r.code != 0 || !strings.Contains(r.stdout, `export NO_PROXY="localhost,`+ipA+`"`) {
			t.Errorf("env --no-proxy: %s", r)
		}
		r = s.machine("env", "--shell", "emacs", "e2e-dm-a")
		if r.code != 0 || !strings.Contains(r.stdout, `(setenv "DOCKER_HOST" "`+urlA+`")`) {
			t.Errorf("env --shell emacs: %s", r)
		}
		if r := s.machine("env", "-u", "e2e-dm-a"); r.code != 2 {
			t.Errorf("env -u NAME: %s", r)
		}
		if r := s.machine("env", "--shell", "bash", "-u"); r.code != 0 || !strings.Contains(r.stdout, "unset DOCKER_HOST") {
			t.Errorf("env -u: %s", r)
		}
		for _, cmd := range []string{"env", "url", "inspect", "ip", "status"} {
			if r := s.machine(cmd, "nothere"); r.code != 1 || !strings.Contains(r.stderr, `Docker machine "nothere" does not exist`) {
				t.Errorf("%s nothere: %s", cmd, r)
			}
		}
		if r := s.dockerEnv("e2e-dm-a", "info", "--format", "{{.Name}}"); r.code != 0 || strings.TrimSpace(r.stdout) != "e2e-dm-a" {
			t.Errorf("docker via env: %s", r)
		}
	})

	t.Run("engine-flags", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		var daemon map[string]any
		mustJSON(t, s.sshOut("e2e-dm-b", "sudo", "cat", "/etc/docker/daemon.json"), &daemon)
		if daemon["log-level"] != "warn" || daemon["max-concurrent-uploads"] != float64(3) || daemon["storage-driver"] != "vfs" {
			t.Errorf("daemon.json of e2e-dm-b: %v", daemon)
		}
		if got := s.sshOut("e2e-dm-b", "docker", "info", "--format", "'{{.Driver}}'"); got != "vfs" {
			t.Errorf("storage driver %q, want vfs", got)
		}
		pid := s.sshOut("e2e-dm-b", "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker")
		env := s.sshOut("e2e-dm-b", "sudo", "cat", "/proc/"+pid+"/environ")
		if !strings.Contains(env, `SHOAL_E2E_GREETING=hello "quoted" $HOME world`) {
			t.Errorf("dockerd's environment lacks the --engine-env value as given: %q", env)
		}
		san := s.sshOut("e2e-dm-b", "sudo", "openssl", "x509", "-in", "/etc/docker/shoal/server.pem", "-noout", "-text")
		if !strings.Contains(san, "DNS:dm-b.example") || !strings.Contains(san, "IP Address:10.99.0.7") {
			t.Errorf("server certificate lacks the --tls-san names:\n%s", san)
		}
		for _, bad := range [][]string{
			{"--engine-opt", "novalue"}, {"--engine-opt", "hosts=tcp://0.0.0.0:2375"}, {"--engine-env", "1BAD=x"},
			{"--engine-env", "A=line\nbreak"}, {"--tls-san", "not a name"}, {"--engine-storage-driver", "x y"},
		} {
			if r := s.machine(append(append([]string{"create", "-d", "docker"}, bad...), "e2e-dm-never")...); r.code != 2 {
				t.Errorf("create %v: %s", bad, r)
			}
		}
	})

	t.Run("scp-certs", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		s.mustMachine("scp", "e2e-dm-a:/etc/hostname", "e2e-dm-b:/tmp/from-a")
		if got := s.sshOut("e2e-dm-b", "cat", "/tmp/from-a"); got != "e2e-dm-a" {
			t.Errorf("scp a:/f b:/f gave %q", got)
		}
		s.mustMachine("ssh", "e2e-dm-a", "mkdir -p /tmp/tree/sub && echo deep > /tmp/tree/sub/f")
		s.mustMachine("scp", "-r", "e2e-dm-a:/tmp/tree", "e2e-dm-b:/tmp/")
		if got := s.sshOut("e2e-dm-b", "cat", "/tmp/tree/sub/f"); got != "deep" {
			t.Errorf("scp -r a:/tree b:/tmp/ gave %q", got)
		}
		for _, bad := range [][]string{{"scp", "bad name:/x", "/tmp/x"}, {"scp", "/tmp/a", "/tmp/b"}, {"scp", "e2e-dm-a:", "/tmp/x"}} {
			if r := s.machine(bad...); r.code != 2 {
				t.Errorf("machine %v: %s", bad, r)
			}
		}
		clientCert := filepath.Join(s.storage, "certs", "cert.pem")
		before, _ := os.ReadFile(clientCert)
		s.mustMachine("regenerate-certs", "-f", "--client-certs", "e2e-dm-a")
		if after, _ := os.ReadFile(clientCert); bytes.Equal(before, after) || len(after) == 0 {
			t.Errorf("--client-certs left the client certificate as it was")
		}
		if r := s.dockerEnv("e2e-dm-a", "version", "--format", "{{.Server.Version}}"); r.code != 0 {
			t.Errorf("docker after regenerate-certs --client-certs: %s", r)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		s := &shoal{t: t, storage: s.storage}
		s.mustMachine("stop", "e2e-dm-b")
		for _, cmd := range []string{"url", "env", "config", "version"} {
			r := s.machine(cmd, "e2e-dm-b")
			if r.code != 1 || !strings.Contains(r.stderr, "Host is not running") || r.stdout != "" {
				t.Errorf("%s of a stopped machine: %s", cmd, r)
			}
		}
		var rows []map[string]any
		mustJSON(t, s.mustMachine("ls", "--output", "json"), &rows)
		if len(rows) != 2 {
			t.Errorf("ls --output json: %v", rows)
		}
		b, _ := json.Marshal(rows)
		if !strings.Contains(string(b), `"Stopped"`) {
			t.Errorf("ls shows no Stopped machine: %s", b)
		}
	})
}
