package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
)

func TestSpecDefaults(t *testing.T) {
	s := Spec()
	if s.Name != "docker" {
		t.Errorf("Name = %q", s.Name)
	}
	c := s.NewConfig().(*Config)
	if c.Image != "shoal/node:bookworm" || c.Network != "shoal" || c.Host != "" || c.Container != "" {
		t.Errorf("NewConfig = %+v, want image shoal/node:bookworm, network shoal", c)
	}
	if DefaultImage != "shoal/node:bookworm" {
		t.Errorf("DefaultImage = %q", DefaultImage)
	}
	// Each config is its own.
	c.Image = "changed"
	if s.NewConfig().(*Config).Image != DefaultImage {
		t.Error("NewConfig returns a shared config")
	}
}

func TestFlags(t *testing.T) {
	s := Spec()
	cfg := s.NewConfig().(*Config)
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	s.BindFlags(fs, cfg)
	if err := fs.Parse([]string{"--docker-image", "img:1", "--docker-network", "net", "--docker-host", "unix:///x.sock"}); err != nil {
		t.Fatal(err)
	}
	want := Config{Image: "img:1", Network: "net", Host: "unix:///x.sock"}
	if *cfg != want {
		t.Errorf("flags = %+v, want %+v", *cfg, want)
	}
	cfg2 := s.NewConfig().(*Config)
	fs2 := pflag.NewFlagSet("t", pflag.ContinueOnError)
	s.BindFlags(fs2, cfg2)
	if err := fs2.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg2.Image != DefaultImage || cfg2.Network != "shoal" {
		t.Errorf("defaults lost after binding flags: %+v", cfg2)
	}
	for _, f := range []string{"docker-image", "docker-network", "docker-host"} {
		if fs2.Lookup(f) == nil {
			t.Errorf("no --%s flag", f)
		}
	}
}

func TestNewContainerName(t *testing.T) {
	s := Spec()
	cfg := s.NewConfig().(*Config)
	d, err := s.New(drivers.Identity{Name: "m1", Dir: t.TempDir()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "docker" {
		t.Errorf("Name() = %q", d.Name())
	}
	if got := d.(*Driver).cfg.Container; got != "shoal-m1" {
		t.Errorf("container = %q, want shoal-m1", got)
	}
	if cfg.Container != "" {
		t.Errorf("New wrote into the caller's config: %+v", cfg)
	}
	cfg.Container = "custom"
	d, _ = s.New(drivers.Identity{Name: "m1"}, cfg)
	if got := d.(*Driver).cfg.Container; got != "custom" {
		t.Errorf("container = %q, want custom", got)
	}
}

func TestCapabilities(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range capabilities {
		if c == "SYS_RESOURCE" || c == "CAP_SYS_RESOURCE" || c == "ALL" {
			t.Errorf("capabilities holds %s", c)
		}
		if strings.HasPrefix(c, "CAP_") {
			t.Errorf("%s: the API wants names without CAP_", c)
		}
		if seen[c] {
			t.Errorf("%s listed twice", c)
		}
		seen[c] = true
	}
	for _, need := range []string{"SYS_ADMIN", "NET_ADMIN", "MKNOD", "SYS_PTRACE", "AUDIT_WRITE", "SETUID", "SETGID", "CHOWN"} {
		if !seen[need] {
			t.Errorf("capabilities lacks %s (systemd and dockerd need it)", need)
		}
	}
}

type seedEntry struct {
	hdr  *tar.Header
	data []byte
}

func readSeed(t *testing.T, seed []byte) map[string]seedEntry {
	t.Helper()
	out := map[string]seedEntry{}
	tr := tar.NewReader(bytes.NewReader(seed))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("seed tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[h.Name]; dup {
			t.Errorf("seed tar holds %s twice", h.Name)
		}
		out[h.Name] = seedEntry{h, data}
	}
	return out
}

func TestSeedFiles(t *testing.T) {
	_, authorized, err := sshrun.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := &Driver{m: drivers.Identity{Name: "m1", Dir: dir, PublicKey: authorized}, cfg: Config{Image: DefaultImage, Network: "shoal", Container: "shoal-m1"}}
	seed, err := d.seedFiles()
	if err != nil {
		t.Fatalf("seedFiles: %v", err)
	}
	files := readSeed(t, seed)

	ak, ok := files["root/.ssh/authorized_keys"]
	if !ok {
		t.Fatalf("no root/.ssh/authorized_keys in %v", keys(files))
	}
	if ak.hdr.Mode&0o777 != 0o600 || ak.hdr.Typeflag != tar.TypeReg {
		t.Errorf("authorized_keys mode %o type %c, want a 0600 file", ak.hdr.Mode, ak.hdr.Typeflag)
	}
	if string(ak.data) != authorized+"\n" {
		t.Errorf("authorized_keys = %q, want the machine's key", ak.data)
	}
	sshDir, ok := files["root/.ssh/"]
	if !ok || sshDir.hdr.Typeflag != tar.TypeDir || sshDir.hdr.Mode&0o777 != 0o700 {
		t.Errorf("root/.ssh/ should be a 0700 folder in the tar: %+v", sshDir.hdr)
	}

	hk, ok := files["etc/ssh/ssh_host_ed25519_key"]
	if !ok {
		t.Fatalf("no host key in %v", keys(files))
	}
	if hk.hdr.Mode&0o777 != 0o600 {
		t.Errorf("host key mode %o, want 600", hk.hdr.Mode)
	}
	signer, err := ssh.ParsePrivateKey(hk.data)
	if err != nil {
		t.Fatalf("host key: %v", err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s", signer.PublicKey().Type())
	}
	pub, ok := files["etc/ssh/ssh_host_ed25519_key.pub"]
	if !ok {
		t.Fatal("no host public key")
	}
	parsed, _, _, _, err := ssh.ParseAuthorizedKey(pub.data)
	if err != nil || !bytes.Equal(parsed.Marshal(), signer.PublicKey().Marshal()) {
		t.Errorf("host .pub does not match the host key: %v", err)
	}

	conf, ok := files["etc/ssh/sshd_config.d/shoal.conf"]
	if !ok {
		t.Fatalf("no sshd_config.d drop-in in %v", keys(files))
	}
	if !hasLine(string(conf.data), "HostKey /etc/ssh/ssh_host_ed25519_key") {
		t.Errorf("shoal.conf = %q, want a HostKey line for the seeded key", conf.data)
	}
	for name, f := range files {
		if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
			t.Errorf("unsafe tar path %q", name)
		}
		if f.hdr.Uid != 0 || f.hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", name, f.hdr.Uid, f.hdr.Gid)
		}
	}

	// The host key is kept in the machine's folder (0600) and reused: the
	// pinned fingerprint stays the same across calls.
	fi, err := os.Stat(filepath.Join(dir, hostKeyFile))
	if err != nil {
		t.Fatalf("host key not kept in the machine folder: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kept host key mode %o, want 600", fi.Mode().Perm())
	}
	seed2, err := d.seedFiles()
	if err != nil {
		t.Fatal(err)
	}
	files2 := readSeed(t, seed2)
	if !bytes.Equal(files2["etc/ssh/ssh_host_ed25519_key"].data, hk.data) {
		t.Error("a second seedFiles made another host key")
	}
	key, err := d.hostKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.Fingerprint != ssh.FingerprintSHA256(signer.PublicKey()) {
		t.Error("hostKey() does not match the seeded key")
	}
}

func TestHostKeyCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, hostKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Driver{m: drivers.Identity{Name: "m1", Dir: dir}}
	if _, err := d.hostKey(); err == nil || !strings.Contains(err.Error(), hostKeyFile) {
		t.Errorf("hostKey on a corrupt file = %v, want an error naming it", err)
	}
	if _, err := d.seedFiles(); err == nil {
		t.Error("seedFiles with a corrupt host key succeeded")
	}
}

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func keys(m map[string]seedEntry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The missing-image error gives the one command that builds the image on
// the machine at hand.
func TestMissingImageHint(t *testing.T) {
	for _, tc := range []struct {
		image          string
		registry, tree bool
		want, not      string
	}{
		{DefaultImage, true, true, "'docker build -t shoal/node:bookworm templates/node'", "make lab-image"},
		{DefaultImage, true, false, "'docker build -t shoal/node:bookworm " + NodeImageSource + "'", "make lab-image"},
		{"my/node:1", true, false, "'docker build -t my/node:1 " + NodeImageSource + "'", "make lab-image"},
		{DefaultImage, false, true, "'make lab-image'", "docker build"},
		{DefaultImage, false, false, "'make lab-image'", "docker build"},
		{"my/node:1", false, true, "'make lab-image && docker tag shoal/node:bookworm my/node:1'", "docker build"},
	} {
		got := missingImageHint(tc.image, tc.registry, tc.tree)
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.not) {
			t.Errorf("%s registry=%v tree=%v: %q, want %q and not %q", tc.image, tc.registry, tc.tree, got, tc.want, tc.not)
		}
	}
}
