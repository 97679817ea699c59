package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/certs"
	"golang.org/x/crypto/ssh"
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
	envA := []string{"DOCKER_HOST=" + urlA, "DOCKER_MACHINE_NAME=e2e-dm-a", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + filepath.Join(s.storage, "machines", "e2e-dm-a")}

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
		if out := s.mustMachine("__complete", "create", "--swarm-join", ""); !strings.Contains(out, "e2e-dm-a\ne2e-dm-b\n") {
			t.Errorf("__complete create --swarm-join:\n%s", out)
		}
		if out := s.mustMachine("__complete", "env", "--shell", ""); !strings.Contains(out, "fish\n") || !strings.Contains(out, "emacs\n") {
			t.Errorf("__complete env --shell:\n%s", out)
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
		if r := s.machine("ssh", "--help"); r.code != 0 || !strings.Contains(r.stdout, "SSH client honours") {
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
		if r := s.machine("-v"); r.code != 0 || !strings.Contains(r.stdout, "machine (shoal)") {
			t.Errorf("machine -v: %s", r)
		}
		// No name and no machine called "default": docker-machine's words.
		for _, cmd := range []string{"env", "ip", "ssh", "url", "start"} {
			if r := s.machine(cmd); r.code != 2 || !strings.Contains(r.stderr, `no "default" machine exists`) {
				t.Errorf("machine %s without a name: %s", cmd, r)
			}
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
		if r := s.machine("env", "-u", "e2e-dm-a"); r.code != 1 {
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
		local := filepath.Join(t.TempDir(), "compose.yml")
		os.WriteFile(local, []byte("services: {}\n"), 0o644)
		s.mustMachine("scp", local, "e2e-dm-a:~")
		if got := s.sshOut("e2e-dm-a", "cat", "~/compose.yml"); got != "services: {}" {
			t.Errorf("scp FILE NAME:~ put %q in the home folder", got)
		}
		// A source without a name of its own (.., ., /) is refused inside an
		// existing folder: the copy would land outside it (#27: a:.. b:/tmp/
		// wrote into $TMPDIR's parent here and uploaded all of $TMPDIR).
		tmpB := s.sshOut("e2e-dm-b", "ls", "-a", "/tmp")
		localDir := t.TempDir()
		for _, args := range [][]string{{"-r", "e2e-dm-a:..", "e2e-dm-b:/tmp/"}, {"-r", "e2e-dm-a:/", "e2e-dm-b:/tmp"}, {"-r", "e2e-dm-a:..", localDir}, {"-r", "e2e-dm-a:~", localDir}} {
			if r := s.machine(append([]string{"scp"}, args...)...); r.code != 2 || !strings.Contains(r.stderr, "no name of its own") {
				t.Errorf("machine scp %v: %s", args, r)
			}
		}
		if got := s.sshOut("e2e-dm-b", "ls", "-a", "/tmp"); got != tmpB {
			t.Errorf("refused scp changed e2e-dm-b's /tmp:\n%s\nthen:\n%s", tmpB, got)
		}
		if entries, _ := os.ReadDir(localDir); len(entries) != 0 {
			t.Errorf("refused scp wrote into %s: %v", localDir, entries)
		}
		// Into a new folder, the copy is that folder.
		s.mustMachine("scp", "-r", "e2e-dm-a:/tmp/tree/sub/..", "e2e-dm-b:/tmp/tree-copy")
		if got := s.sshOut("e2e-dm-b", "cat", "/tmp/tree-copy/sub/f"); got != "deep" {
			t.Errorf("scp -r a:/tmp/tree/sub/.. b:/tmp/tree-copy gave %q", got)
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
		start := time.Now()
		for _, args := range [][]string{{"ssh", "e2e-dm-b", "true"}, {"scp", "e2e-dm-b:/etc/hostname", t.TempDir()}} {
			if r := s.machine(args...); r.code != 1 || !strings.Contains(r.stderr, "Host is not running") {
				t.Errorf("machine %v of a stopped machine: %s", args, r)
			}
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("ssh and scp of a stopped machine took %s: they should say so at once", d)
		}
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
		// rm -f needs no -y, as in docker-machine's scripts.
		if r := s.machine("rm", "-f", "e2e-dm-b"); r.code != 0 || !strings.Contains(r.stdout, "Successfully removed e2e-dm-b") {
			t.Errorf("rm -f off a terminal: %s", r)
		}
		if r := run(t, time.Minute, "docker", "inspect", "shoal-e2e-dm-b"); r.code == 0 {
			t.Errorf("rm -f left the container")
		}
	})
}

// dmStore writes a docker-machine store as docker-machine lays it out:
// certs/ (the CA and the client certificate), and for each machine
// machines/NAME/ with config.json, its SSH key id_rsa and the certificates.
type dmStore struct {
	t    *testing.T
	root string
}

func (d dmStore) write(rel string, data []byte, mode os.FileMode) {
	d.t.Helper()
	p := filepath.Join(d.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		d.t.Fatal(err)
	}
}

// hostConfig is a docker-machine config.json (libmachine's Host, version 3).
func (d dmStore) hostConfig(name, driverName string, driver map[string]any) []byte {
	dir := filepath.Join(d.root, "machines", name)
	certs := filepath.Join(d.root, "certs")
	cfg := map[string]any{
		"ConfigVersion": 3,
		"Driver":        driver,
		"DriverName":    driverName,
		"HostOptions": map[string]any{
			"Driver": "", "Memory": 0, "Disk": 0,
			"EngineOptions": map[string]any{
				"ArbitraryFlags": []string{}, "Dns": nil, "GraphDir": "", "Env": []string{}, "Ipv6": false,
				"InsecureRegistry": []string{}, "Labels": []string{}, "LogLevel": "", "StorageDriver": "",
				"SelinuxEnabled": false, "TlsVerify": true, "RegistryMirror": []string{}, "InstallURL": "https://get.docker.com",
			},
			"SwarmOptions": map[string]any{
				"IsSwarm": false, "Address": "", "Discovery": "", "Agent": false, "Master": false,
				"Host": "tcp://0.0.0.0:3376", "Image": "swarm:latest", "Strategy": "spread", "Heartbeat": 0,
				"Overcommit": 0, "ArbitraryFlags": []string{}, "ArbitraryJoinFlags": []string{}, "Env": nil, "IsExperimental": false,
			},
			"AuthOptions": map[string]any{
				"CertDir": certs, "CaCertPath": filepath.Join(certs, "ca.pem"), "CaPrivateKeyPath": filepath.Join(certs, "ca-key.pem"),
				"CaCertRemotePath": "", "ServerCertPath": filepath.Join(dir, "server.pem"), "ServerKeyPath": filepath.Join(dir, "server-key.pem"),
				"ClientKeyPath": filepath.Join(certs, "key.pem"), "ServerCertRemotePath": "", "ServerKeyRemotePath": "",
				"ClientCertPath": filepath.Join(certs, "cert.pem"), "ServerCertSANs": []string{}, "StorePath": dir,
			},
		},
		"Name": name,
	}
	b, err := json.MarshalIndent(cfg, "", "    ")
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

// TestDockerMachineImport: a host docker-machine's generic driver set up
// (TLS on 2376 with its certificates, its systemd drop-in) with a container
// running without a restart policy, and a store describing it; `machine
// import` brings it over without touching it, then env, ssh and provision
// work and the container keeps running.
func TestDockerMachineImport(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	// A storage path a shell would run if 'machine env' did not quote it.
	s.storage = filepath.Join(s.storage, `my $(touch PWNED) "store" it's`)
	t.Cleanup(func() {
		if _, err := os.Stat("PWNED"); err == nil {
			os.Remove("PWNED")
			t.Errorf("eval of 'machine env' ran the $(...) in the storage path")
		}
	})
	const name = "e2e-dm-imp"
	dm := dmStore{t: t, root: filepath.Join(t.TempDir(), "docker machine")}

	// The key docker-machine's generic driver copied: RSA, PKCS#1.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dm.write("machines/"+name+"/id_rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), 0o600)
	dm.write("machines/"+name+"/id_rsa.pub", ssh.MarshalAuthorizedKey(pub), 0o644)
	ip := labHost(t, name, hostOpts{user: "tester", pubkey: filepath.Join(dm.root, "machines", name, "id_rsa.pub"), network: "shoal-lab-dm-imp"})

	// The CA and client certificate of the store, a server certificate for
	// the host, copied where docker-machine copies them.
	os.MkdirAll(filepath.Join(dm.root, "certs"), 0o700)
	noLock := func(context.Context) (func(), error) { return func() {}, nil } // only this test writes it
	ca, err := certs.EnsureCA(context.Background(), filepath.Join(dm.root, "certs"), func(p string, b []byte, m fs.FileMode) error { return os.WriteFile(p, b, m) }, noLock)
	if err != nil {
		t.Fatal(err)
	}
	srv, srvKey, err := ca.IssueServer([]string{"localhost", name}, []net.IP{net.ParseIP(ip), net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		b, err := os.ReadFile(filepath.Join(dm.root, "certs", f))
		if err != nil {
			t.Fatal(err)
		}
		dm.write("machines/"+name+"/"+f, b, 0o600)
	}
	dm.write("machines/"+name+"/server.pem", srv, 0o600)
	dm.write("machines/"+name+"/server-key.pem", srvKey, 0o600)
	dm.write("machines/"+name+"/config.json", dm.hostConfig(name, "generic", map[string]any{
		"IPAddress": ip, "MachineName": name, "SSHUser": "tester", "SSHPort": 22,
		"SSHKeyPath": filepath.Join(dm.root, "machines", name, "id_rsa"), "StorePath": dm.root,
		"SwarmMaster": false, "SwarmHost": "", "SwarmDiscovery": "", "EnginePort": 2376, "SSHKey": "/home/someone/.ssh/id_rsa",
	}), 0o600)
	// A cloud machine shoal has no driver for (never contacted).
	dm.write("machines/e2e-dm-cloud/config.json", dm.hostConfig("e2e-dm-cloud", "amazonec2", map[string]any{
		"IPAddress": "127.0.0.1", "MachineName": "e2e-dm-cloud", "SSHUser": "ubuntu", "SSHPort": 22, "Region": "us-east-1",
	}), 0o600)
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		b, _ := os.ReadFile(filepath.Join(dm.root, "certs", f))
		dm.write("machines/e2e-dm-cloud/"+f, b, 0o600)
	}

	// The host as docker-machine's provisioner leaves it.
	for f, data := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": srv, "server-key.pem": srvKey} {
		local := filepath.Join(t.TempDir(), f)
		os.WriteFile(local, data, 0o600)
		if r := run(t, time.Minute, "docker", "cp", local, name+":/etc/docker/"+f); r.code != 0 {
			t.Fatalf("docker cp %s: %s", f, r)
		}
	}
	dropIn := `[Service]
ExecStart=
ExecStart=DOCKERD -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=generic
Environment=
`
	if r := dockerExec(t, name, "sh", "-c", "mkdir -p /etc/systemd/system/docker.service.d && sed \"s|DOCKERD|$(command -v dockerd)|\" > /etc/systemd/system/docker.service.d/10-machine.conf <<'EOF'\n"+dropIn+"EOF\nsystemctl daemon-reload && systemctl restart docker"); r.code != 0 {
		t.Fatalf("docker-machine's set-up: %s\n%s", r, dockerExec(t, name, "journalctl", "-u", "docker", "-n", "15", "--no-pager").stdout)
	}
	if r := run(t, 3*time.Minute, "bash", "-c", "docker save busybox:latest | docker exec -i "+name+" docker load"); r.code != 0 {
		t.Fatalf("busybox on the host: %s", r)
	}
	if r := dockerExec(t, name, "docker", "run", "-d", "--name", "keepme", "busybox:latest", "sleep", "1000000"); r.code != 0 {
		t.Fatalf("a container without a restart policy: %s", r)
	}
	hostState := func() string {
		r := dockerExec(t, name, "sh", "-c", "hostname; md5sum /etc/hosts /etc/docker/* /etc/systemd/system/docker.service.d/*; ls /etc/docker; systemctl show -p MainPID --value docker; docker inspect -f '{{.State.StartedAt}} {{.State.Running}}' keepme")
		if r.code != 0 {
			t.Fatalf("host state: %s", r)
		}
		return r.stdout
	}
	before := hostState()
	dmBefore := storageFiles(t, dm.root)
	// docker-machine's store is never shoal's (#27): refused with the hint,
	// and nothing made in it (compared with dmBefore below).
	if r := (&shoal{t: t, storage: dm.root}).machine("rm", "-f", name); r.code == 0 || !strings.Contains(r.stderr, "machine import") {
		t.Errorf("machine --storage-path DOCKER-MACHINE-STORE rm -f: %s", r)
	}

	// Off a terminal, without --yes: the host keys are shown, nothing is imported.
	r := s.machine("import", "--docker-machine-storage-path", dm.root)
	if r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("import without --yes off a terminal: %s", r)
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
		t.Fatalf("import without --yes imported %q", got)
	}
	// On a terminal it asks; "n" imports nothing.
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("prerequisite missing: script (util-linux), to give machine a terminal")
	}
	tty := run(t, time.Minute, "bash", "-c", "printf 'n\\n' | script -qec "+shellJoin([]string{shellJoin([]string{bin("machine"), "--storage-path", s.storage,
		"import", "--docker-machine-storage-path", dm.root})})+" /dev/null")
	if tty.code != 1 || !strings.Contains(tty.stdout, "pin the host keys above? (y/n)") || !strings.Contains(tty.stdout, "nothing imported") {
		t.Errorf("import on a terminal answered n: %s", tty)
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
		t.Fatalf("import answered n imported %q", got)
	}
	r = s.machine("import", "--docker-machine-storage-path", dm.root, "--yes")
	if r.code != 0 {
		t.Fatalf("import: %s", r)
	}
	t.Logf("import:\n%s", r.stdout)
	keys := dockerExec(t, name, "sh", "-c", "for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $k; done").stdout
	fp := ""
	for _, f := range strings.Fields(r.stdout) {
		if strings.HasPrefix(f, "SHA256:") {
			fp = f
		}
	}
	if fp == "" || !strings.Contains(keys, fp) {
		t.Errorf("import showed host key %q, the host has:\n%s", fp, keys)
	}
	for _, want := range []string{"e2e-dm-cloud", "amazonec2", "not importable", "Imported " + name, "tester@" + ip + ":22"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import output lacks %q", want)
		}
	}
	if got := hostState(); got != before {
		t.Errorf("import changed the host:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	var cfg map[string]any
	mustJSON(t, s.mustMachine("inspect", name), &cfg)
	if ssh, _ := cfg["ssh"].(map[string]any); ssh["hostKeyFingerprint"] != fp || ssh["user"] != "tester" {
		t.Errorf("the imported machine: %v", cfg)
	}

	ls := s.mustMachine("ls", "--format", "{{.Name}} {{.DriverName}} {{.State}} {{.URL}}")
	if !strings.Contains(ls, name+" ssh Running tcp://"+ip+":2376") || strings.Contains(ls, "e2e-dm-cloud") {
		t.Errorf("ls after import:\n%s", ls)
	}
	if r := s.dockerEnv(name, "ps", "--format", "{{.Names}}"); r.code != 0 || !strings.Contains(r.stdout, "keepme") {
		t.Errorf("docker via machine env of the imported machine: %s", r)
	}
	if got := s.sshOut(name, "sudo", "docker", "ps", "--format", "{{.Names}}"); !strings.Contains(got, "keepme") {
		t.Errorf("machine ssh NAME sudo docker ps: %q", got)
	}
	s.mustMachine("provision", name)
	after := hostState()
	pidLine := func(st string) string {
		return strings.Split(strings.TrimSpace(st), "\n")[len(strings.Split(strings.TrimSpace(st), "\n"))-2]
	}
	if pidLine(after) != pidLine(before) {
		t.Errorf("provision restarted dockerd: %q -> %q", pidLine(before), pidLine(after))
	}
	if !strings.HasSuffix(strings.TrimSpace(after), strings.Split(strings.TrimSpace(before), "\n")[len(strings.Split(strings.TrimSpace(before), "\n"))-1]) {
		t.Errorf("keepme did not keep running:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if r := s.dockerEnv(name, "ps", "--format", "{{.Names}}"); r.code != 0 || !strings.Contains(r.stdout, "keepme") {
		t.Errorf("docker via machine env after provision: %s", r)
	}
	if got := s.sshOut(name, "id", "-nG"); !strings.Contains(" "+got+" ", " docker ") {
		t.Errorf("provision did not put tester in the docker group: %q", got)
	}

	// Taking the engine over (issue 27): regenerate-certs moves it to
	// shoal's certificates and drop-in; what docker-machine started dockerd
	// with (its label, -H unix://) stays, and so does the host's local
	// socket, which a drop-in on the unit's own -H fd:// left dead.
	s.mustMachine("regenerate-certs", "-f", name)
	if r := dockerExec(t, name, "docker", "ps", "-a", "--format", "{{.Names}}"); r.code != 0 || !strings.Contains(r.stdout, "keepme") {
		t.Errorf("the host's local socket after regenerate-certs: %s", r)
	}
	if r := dockerExec(t, name, "docker", "info", "--format", "{{json .Labels}}"); !strings.Contains(r.stdout, "provider=generic") {
		t.Errorf("docker-machine's label after regenerate-certs: %s", r)
	}
	if r := s.dockerEnv(name, "ps", "-a", "--format", "{{.Names}}"); r.code != 0 || !strings.Contains(r.stdout, "keepme") {
		t.Errorf("docker via machine env after regenerate-certs: %s", r)
	}

	// Again: already there, nothing to import; the docker-machine store is
	// as it was.
	if r := s.machine("import", "--docker-machine-storage-path", dm.root, "--yes", name); r.code != 1 || !strings.Contains(r.stdout, "already has a machine") {
		t.Errorf("a second import: %s", r)
	}
	dmAfter := storageFiles(t, dm.root)
	if len(dmAfter) != len(dmBefore) {
		t.Errorf("import changed the docker-machine store: %d files, then %d", len(dmBefore), len(dmAfter))
	}
	for p, b := range dmBefore {
		if !bytes.Equal(dmAfter[p], b) {
			t.Errorf("import changed %s", p)
		}
	}
}
