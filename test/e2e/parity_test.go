package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parityNet is the lab network of TestDockerMachineParity.
const parityNet = "shoal-lab-parity"

// TestDockerMachineParity: the last differences from docker-machine (issue
// #32), each compared with what docker-machine prints for the same command
// (its commands/env.go, ssh.go, scp.go, mount.go: the lines and status).
func TestDockerMachineParity(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	const name = "e2e-par-a"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", parityNet) })
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+name) })
	if r := run(t, time.Minute, "docker", "network", "create", parityNet); r.code != 0 && !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("network: %s", r)
	}
	s.mustMachine("create", "-d", "docker", "--docker-network", parityNet, name)

	t.Run("env-unset", func(t *testing.T) { parityEnvUnset(t, s, name) })
	t.Run("cert-path", func(t *testing.T) { parityCertPath(t, s, name) })
	t.Run("ssh-options", func(t *testing.T) { paritySSHOptions(t, s, name) })
	t.Run("ssh-forward", func(t *testing.T) { paritySSHForward(t, s, name) })
	t.Run("ssh-agent", func(t *testing.T) { paritySSHAgent(t, s, name) })
	t.Run("scp-delta", func(t *testing.T) { paritySCPDelta(t, s, name) })
	t.Run("mount", func(t *testing.T) { parityMount(t, s, name) })
}

func parityEnvUnset(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	// docker-machine: errImproperUnsetEnvArgs through log.Error, exit 1.
	r := s.machine("env", "-u", name)
	if r.code != 1 || r.stdout != "" || r.stderr != "Error: Expected no machine name when the -u flag is present\n" {
		t.Errorf("env -u NAME: %s", r)
	}
	// docker-machine's envTmpl with shellCfgUnset: the four DOCKER_* lines,
	// then the proxy variable's (NO_PROXY when no_proxy is not set).
	noProxy := []string{"NO_PROXY=", "no_proxy="}
	for shell, want := range map[string]string{
		"bash": "unset DOCKER_TLS_VERIFY\nunset DOCKER_HOST\nunset DOCKER_CERT_PATH\nunset DOCKER_MACHINE_NAME\nunset NO_PROXY\n",
		"fish": "set -e DOCKER_TLS_VERIFY;\nset -e DOCKER_HOST;\nset -e DOCKER_CERT_PATH;\nset -e DOCKER_MACHINE_NAME;\nset -e NO_PROXY;\n",
		"cmd":  "SET DOCKER_TLS_VERIFY=\nSET DOCKER_HOST=\nSET DOCKER_CERT_PATH=\nSET DOCKER_MACHINE_NAME=\nSET NO_PROXY=\n",
	} {
		r := s.machineEnv(noProxy, "env", "--shell", shell, "--no-proxy", "-u")
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("env --shell %s --no-proxy -u, want it to start with\n%s\n%s", shell, want, r)
		}
	}
	r = s.machineEnv([]string{"no_proxy=localhost"}, "env", "--shell", "bash", "--no-proxy", "-u")
	if r.code != 0 || !strings.Contains(r.stdout, "unset DOCKER_MACHINE_NAME\nunset no_proxy\n") {
		t.Errorf("env --no-proxy -u with no_proxy set: %s", r)
	}
	// What eval leaves: nothing of the machine, nor the proxy variable.
	script := s.mustMachine("env", "--shell", "bash", "--no-proxy", name) + s.machineEnv(noProxy, "env", "--shell", "bash", "--no-proxy", "-u").stdout
	out, err := exec.Command("bash", "-c", script+"\nenv | grep -E '^(DOCKER_|NO_PROXY=)' || true").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("after env then env -u: %v %q", err, out)
	}
}

func parityCertPath(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	dir := filepath.Join(s.storage, "machines", name)
	// docker-machine: DockerCertPath is filepath.Join(GetMachineDir(), host.Name).
	if env := s.mustMachine("env", "--shell", "bash", name); !strings.Contains(env, `export DOCKER_CERT_PATH="`+dir+`"`+"\n") {
		t.Errorf("env: DOCKER_CERT_PATH is not %s:\n%s", dir, env)
	}
	if cfg := s.mustMachine("config", name); !strings.Contains(cfg, `--tlscacert="`+filepath.Join(dir, "ca.pem")+`"`) || !strings.Contains(cfg, `--tlskey="`+filepath.Join(dir, "key.pem")+`"`) {
		t.Errorf("config does not point at %s:\n%s", dir, cfg)
	}
	// A copy of the folder is all a script needs: the docker CLI reaches
	// the engine with it.
	copyDir := t.TempDir()
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		os.WriteFile(filepath.Join(copyDir, f), data, 0o600)
	}
	dockerWith := func(certDir string) result {
		url := strings.TrimSpace(s.mustMachine("url", name))
		cmd := exec.Command("docker", "info", "--format", "{{.Name}}")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+url, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+certDir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			code = 1
		}
		return result{stdout: out.String(), stderr: errb.String(), code: code}
	}
	if r := dockerWith(copyDir); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Errorf("docker with a copy of %s: %s", dir, r)
	}
	// A new client certificate reaches the machine's folder.
	before, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	s.mustMachine("regenerate-certs", "-f", "--client-certs", name)
	after, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	store, _ := os.ReadFile(filepath.Join(s.storage, "certs", "cert.pem"))
	if bytes.Equal(before, after) || !bytes.Equal(after, store) {
		t.Errorf("regenerate-certs --client-certs: the machine's cert.pem is not the new one")
	}
	if st, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v %v", st, err)
	}
	if r := dockerWith(dir); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Errorf("docker with %s after the renewal: %s", dir, r)
	}
}

func paritySSHOptions(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	// OpenSSH (docker-machine runs ssh user@host ARGS...): -C is ssh's,
	// the command is "echo foo", which prints "foo".
	if r := s.machine("ssh", name, "-C", "echo", "foo"); r.code != 0 || r.stdout != "foo\n" {
		t.Errorf("ssh NAME -C echo foo: %s", r)
	}
	if r := s.machine("ssh", name, "ls", "-la", "/"); r.code != 0 || !strings.Contains(r.stdout, "etc") {
		t.Errorf("ssh NAME ls -la /: %s", r)
	}
	if r := s.machine("ssh", name, "-o", "ConnectTimeout=10", "-q", "-T", "echo", "-C"); r.code != 0 || r.stdout != "-C\n" {
		t.Errorf("ssh NAME -o ConnectTimeout=10 -q -T echo -C: %s", r)
	}
	// -tt: a pty even without a terminal here; without, none.
	if r := s.machine("ssh", name, "-tt", "tty"); r.code != 0 || !strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("ssh NAME -tt tty: %s", r)
	}
	if r := s.machine("ssh", name, "tty"); strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("ssh NAME tty got a pty: %s", r)
	}
	// -i and -p: the machine's own key and port, given again, work.
	key := filepath.Join(s.storage, "machines", name, "id_ed25519")
	if _, err := os.Stat(key); err != nil {
		key = filepath.Join(s.storage, "machines", name, "id_rsa")
	}
	if r := s.machine("ssh", name, "-i", key, "-p", "22", "true"); r.code != 0 {
		t.Errorf("ssh NAME -i KEY -p 22 true: %s", r)
	}
	// What the client cannot honour is refused by name; nothing runs.
	for opt, argv := range map[string][]string{
		"-X": {"-X", "touch", "/tmp/parity-ran"}, "-J": {"-J", "jump", "touch", "/tmp/parity-ran"},
		"StrictHostKeyChecking": {"-o", "StrictHostKeyChecking=no", "touch", "/tmp/parity-ran"},
	} {
		if r := s.machine(append([]string{"ssh", name}, argv...)...); r.code != 2 || !strings.Contains(r.stderr, opt) {
			t.Errorf("ssh NAME %s: %s", strings.Join(argv, " "), r)
		}
	}
	if r := s.machine("ssh", name, "test", "!", "-e", "/tmp/parity-ran"); r.code != 0 {
		t.Errorf("a refused option ran its command: %s", r)
	}
}

func paritySSHForward(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// -N -L: the host's own sshd through the forward answers with its
	// banner; an interrupt ends it.
	cmd := exec.CommandContext(ctx, bin("machine"), "--storage-path", s.storage, "ssh", name, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", port))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cancel()
	var banner string
	for i := 0; i < 100 && banner == ""; i++ {
		time.Sleep(200 * time.Millisecond)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Close()
		banner = string(buf[:n])
	}
	if !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Errorf("through -L: %q (stderr %s)", banner, errb.String())
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("ssh -N -L after an interrupt: %v %s", err, errb.String())
	}
	// -D: a SOCKS5 CONNECT here to the host's own sshd.
	if banner := paritySOCKS(t, s, name); !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Errorf("through -D: %q", banner)
	}
	// -R: the host reaches a listener here.
	here, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	go func() {
		for {
			c, err := here.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from here\n"))
			c.Close()
		}
	}()
	r := s.machine("ssh", name, "-R", "127.0.0.1:47811:"+here.Addr().String(), "bash", "-c", "'exec 3<>/dev/tcp/127.0.0.1/47811; head -1 <&3'")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hello from here" {
		t.Errorf("ssh NAME -R: %s", r)
	}
}

// -A: the host's ssh-add lists the keys of the agent here.
func paritySSHAgent(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Skipf("ssh-agent: %v", err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	priv, _ := userKey(t)
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	add := exec.Command("ssh-add", priv)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	r := s.machineEnv([]string{"SSH_AUTH_SOCK=" + sock}, "ssh", name, "-A", "ssh-add", "-l")
	if r.code != 0 || !strings.Contains(r.stdout, "ED25519") {
		t.Errorf("ssh NAME -A ssh-add -l: %s", r)
	}
	// Without -A, the host sees no agent.
	if r := s.machineEnv([]string{"SSH_AUTH_SOCK=" + sock}, "ssh", name, "ssh-add", "-l"); r.code == 0 {
		t.Errorf("ssh NAME ssh-add -l without -A: %s", r)
	}
}

func paritySCPDelta(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	src := filepath.Join(t.TempDir(), "delta.txt")
	os.WriteFile(src, []byte(strings.Repeat("shoal delta\n", 1000)), 0o644)
	// No rsync on the machine yet: said, naming the package.
	if has := s.machine("ssh", name, "command", "-v", "rsync"); has.code != 0 {
		r := s.machine("scp", "-d", src, name+":/tmp/")
		if r.code != 1 || !strings.Contains(r.stderr, "needs rsync on the machine too") {
			t.Errorf("scp -d without rsync on the machine: %s", r)
		}
		if r := s.machine("ssh", name, "sudo", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "rsync"); r.code != 0 {
			t.Fatalf("installing rsync on %s: %s", name, r)
		}
	}
	// docker-machine: rsync --progress -e "ssh ..." SRC user@host:DST.
	r := s.machine("scp", "-d", src, name+":/tmp/")
	if r.code != 0 || !strings.Contains(r.stdout, "delta.txt") {
		t.Errorf("scp -d: %s", r)
	}
	if got := s.sshOut(name, "md5sum", "<", "/tmp/delta.txt"); !strings.HasPrefix(got, md5Local(t, src)) {
		t.Errorf("scp -d copy differs: %s", got)
	}
	// A change sends only the differences; -q drops --progress; -r down.
	os.WriteFile(src, []byte(strings.Repeat("shoal delta\n", 1000)+"one more\n"), 0o644)
	if r := s.machine("scp", "-d", "-q", src, name+":/tmp/delta.txt"); r.code != 0 || r.stdout != "" {
		t.Errorf("scp -d -q: %s", r)
	}
	s.sshOut(name, "mkdir", "-p", "/tmp/parity-tree/sub", "&&", "echo", "x", ">", "/tmp/parity-tree/sub/f")
	down := t.TempDir()
	if r := s.machine("scp", "-d", "-r", name+":/tmp/parity-tree", down); r.code != 0 {
		t.Errorf("scp -d -r down: %s", r)
	}
	if data, err := os.ReadFile(filepath.Join(down, "parity-tree", "sub", "f")); err != nil || string(data) != "x\n" {
		t.Errorf("scp -d -r: %q %v", data, err)
	}
}

func md5Local(t *testing.T, p string) string {
	out, err := exec.Command("md5sum", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

func parityMount(t *testing.T, s *shoal, name string) {
	s = &shoal{t: t, storage: s.storage}
	if _, err := exec.LookPath("sshfs"); err != nil {
		t.Skip("sshfs is not installed here (lab.sh setup installs it)")
	}
	s.sshOut(name, "echo", "mounted", ">", "/tmp/parity-mount-file")
	dir := t.TempDir()
	r := s.machine("mount", name+":/tmp", dir)
	if r.code != 0 {
		if strings.Contains(r.stderr, "fuse") {
			t.Skipf("FUSE does not work here: %s", r)
		}
		t.Fatalf("mount: %s", r)
	}
	defer s.machine("mount", "-u", name+":/tmp", dir)
	if data, err := os.ReadFile(filepath.Join(dir, "parity-mount-file")); err != nil || string(data) != "mounted\n" {
		t.Errorf("through the mount: %q %v", data, err)
	}
	if r := s.machine("mount", "-u", name+":/tmp", dir); r.code != 0 {
		t.Errorf("mount -u: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "parity-mount-file")); err == nil {
		t.Errorf("still mounted after mount -u")
	}
}

// paritySOCKS runs machine ssh -N -D and reads what 127.0.0.1:22, reached
// through it with SOCKS5 from the host, says first.
func paritySOCKS(t *testing.T, s *shoal, name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("machine"), "--storage-path", s.storage, "ssh", name, "-N", "-D", fmt.Sprintf("127.0.0.1:%d", port))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	for i := 0; i < 100; i++ {
		time.Sleep(200 * time.Millisecond)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			continue
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 22})
		reply := make([]byte, 12)
		if n, err := io.ReadFull(c, reply); err != nil || reply[3] != 0 {
			t.Fatalf("socks reply %v (%d, %v); stderr %s", reply, n, err, errb.String())
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		return string(buf[:n])
	}
	t.Fatalf("no SOCKS listener: %s", errb.String())
	return ""
}
