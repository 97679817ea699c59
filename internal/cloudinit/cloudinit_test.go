package cloudinit

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"golang.org/x/crypto/ssh"
)

func testSeed(t *testing.T) Seed {
	t.Helper()
	priv, pub, err := GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return Seed{
		InstanceID:        "i-123",
		Hostname:          "vm1",
		User:              "shoal",
		AuthorizedKeys:    []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3k9b1uo0Y5G3n6b5kXq3rGSBmh+7QmV7l0fFzN6V3x me@host\n"},
		HostKeyPrivatePEM: priv,
		HostKeyPublic:     pub,
	}
}

// decode parses a document the way cloud-init's YAML loader would see it;
// the documents are JSON, a subset of YAML.
func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	doc = bytes.TrimPrefix(doc, []byte("#cloud-config\n"))
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	return m
}

func TestGenerateHostKey(t *testing.T) {
	priv, pub, err := GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); got != pub {
		t.Fatalf("public key %q does not match the private key's %q", pub, got)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s", signer.PublicKey().Type())
	}
	fp, err := HostKeyFingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if fp != ssh.FingerprintSHA256(signer.PublicKey()) || !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("fingerprint %s", fp)
	}
}

func TestMetaData(t *testing.T) {
	m := decode(t, testSeed(t).MetaData())
	if m["instance-id"] != "i-123" || m["local-hostname"] != "vm1" {
		t.Fatalf("meta-data %v", m)
	}
}

func TestUserData(t *testing.T) {
	s := testSeed(t)
	ud, err := s.UserData()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ud, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config:\n%s", ud)
	}
	m := decode(t, ud)
	users := m["users"].([]any)
	if len(users) != 1 {
		t.Fatalf("users %v", users)
	}
	u := users[0].(map[string]any)
	if u["name"] != "shoal" || u["sudo"] != "ALL=(ALL) NOPASSWD:ALL" || u["shell"] != "/bin/bash" || u["lock_passwd"] != true {
		t.Fatalf("user %v", u)
	}
	keys := u["ssh_authorized_keys"].([]any)
	if len(keys) != 1 || strings.HasSuffix(keys[0].(string), "\n") {
		t.Fatalf("authorized keys %q", keys)
	}
	hk := m["ssh_keys"].(map[string]any)
	if hk["ed25519_private"] != string(s.HostKeyPrivatePEM) || hk["ed25519_public"] != s.HostKeyPublic {
		t.Fatalf("ssh_keys %v", hk)
	}
	if m["ssh_deletekeys"] != true || m["lock_passwd"] != nil || m["hostname"] != "vm1" {
		t.Fatalf("user-data %v", m)
	}
	// ssh_pwauth makes cloud-init restart sshd late in boot (the
	// connection shoal opened is reset); the locked password is enough.
	if _, set := m["ssh_pwauth"]; set {
		t.Fatalf("user-data sets ssh_pwauth: %v", m)
	}
	if u := m["users"].([]any)[0].(map[string]any); u["lock_passwd"] != true {
		t.Fatalf("the user's password must be locked: %v", u)
	}
	wf := m["write_files"].([]any)[0].(map[string]any)
	if !strings.Contains(wf["content"].(string), "HostKey /etc/ssh/ssh_host_ed25519_key") {
		t.Fatalf("write_files %v", wf)
	}
}

func TestUserDataInvalid(t *testing.T) {
	for name, mut := range map[string]func(*Seed){
		"no user":       func(s *Seed) { s.User = "" },
		"root":          func(s *Seed) { s.User = "root" },
		"no hostname":   func(s *Seed) { s.Hostname = "" },
		"half host key": func(s *Seed) { s.HostKeyPublic = "" },
		"bad host key":  func(s *Seed) { s.HostKeyPublic = "ssh-ed25519 nope" },
		"gw no address": func(s *Seed) { s.Interfaces = []Interface{{MAC: "52:54:00:00:00:01", Gateway: "10.0.0.1"}} },
	} {
		t.Run(name, func(t *testing.T) {
			s := testSeed(t)
			mut(&s)
			if _, err := s.UserData(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestNetworkConfig(t *testing.T) {
	s := testSeed(t)
	m := decode(t, s.NetworkConfig())
	if m["version"] != float64(2) {
		t.Fatalf("version %v", m["version"])
	}
	eth := m["ethernets"].(map[string]any)["all-en"].(map[string]any)
	if eth["dhcp4"] != true || eth["match"].(map[string]any)["name"] != "e*" {
		t.Fatalf("default network %v", m)
	}

	s.Interfaces = []Interface{
		{MAC: "52:54:00:AA:BB:01"},
		{MAC: "52:54:00:aa:bb:02", Address: "192.168.56.10/24", Gateway: "192.168.56.1"},
	}
	m = decode(t, s.NetworkConfig())
	eths := m["ethernets"].(map[string]any)
	nic0 := eths["nic0"].(map[string]any)
	if nic0["dhcp4"] != true || nic0["match"].(map[string]any)["macaddress"] != "52:54:00:aa:bb:01" {
		t.Fatalf("nic0 %v", nic0)
	}
	nic1 := eths["nic1"].(map[string]any)
	if nic1["dhcp4"] != false || nic1["addresses"].([]any)[0] != "192.168.56.10/24" ||
		nic1["routes"].([]any)[0].(map[string]any)["via"] != "192.168.56.1" {
		t.Fatalf("nic1 %v", nic1)
	}
}

// TestYAML checks the documents with PyYAML, the parser cloud-init uses,
// where python3 and its yaml module are installed.
func TestYAML(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	if exec.Command(py, "-c", "import yaml").Run() != nil {
		t.Skip("no python3 yaml module")
	}
	files, err := testSeed(t).Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		cmd := exec.Command(py, "-c", "import sys, yaml, json; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
		cmd.Stdin = bytes.NewReader(content)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: PyYAML: %v", name, err)
		}
		var viaYAML, viaJSON any
		if err := json.Unmarshal(out, &viaYAML); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(bytes.TrimPrefix(content, []byte("#cloud-config\n")), &viaJSON); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(viaYAML)
		b, _ := json.Marshal(viaJSON)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: YAML and JSON readings differ:\n%s\n%s", name, a, b)
		}
	}
}

func TestISO(t *testing.T) {
	s := testSeed(t)
	img, err := s.ISO()
	if err != nil {
		t.Fatal(err)
	}
	if len(img)%isoBlockSize != 0 || len(img) > 1<<20 {
		t.Fatalf("iso size %d", len(img))
	}
	want, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := file.OpenFromPath(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fsys, err := iso9660.Read(store, int64(len(img)), 0, isoBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(fsys.Label(), " \x00"); got != VolumeLabel {
		t.Fatalf("volume label %q", got)
	}
	entries, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Fatalf("entries %v", names)
	}
	for name, content := range want {
		got, err := fsys.ReadFile(name)
		if err != nil {
			t.Fatalf("%s: %v (entries %v)", name, err, names)
		}
		if !bytes.Equal(got, content) {
			t.Fatalf("%s: content differs:\n%s\nwant\n%s", name, got, content)
		}
	}
	// The label is also plain bytes in the primary volume descriptor, where
	// blkid finds it.
	if got := strings.TrimRight(string(img[pvdOffset+40:pvdOffset+72]), " \x00"); got != VolumeLabel {
		t.Fatalf("PVD volume id %q", got)
	}
	// blkid is what finds the seed in the guest (LABEL=cidata).
	if blkid, err := exec.LookPath("blkid"); err == nil {
		out, err := exec.Command(blkid, "-p", "-o", "export", path).Output()
		if err != nil {
			t.Fatalf("blkid: %v", err)
		}
		if !strings.Contains(string(out), "LABEL="+VolumeLabel+"\n") || !strings.Contains(string(out), "TYPE=iso9660\n") {
			t.Fatalf("blkid sees\n%s", out)
		}
	}
}

// TestISOIsoinfo reads the seed with an independent reader (isoinfo from
// genisoimage) where it is installed: Rock Ridge and Joliet names.
func TestISOIsoinfo(t *testing.T) {
	isoinfo, err := exec.LookPath("isoinfo")
	if err != nil {
		t.Skip("no isoinfo")
	}
	img, err := testSeed(t).ISO()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"-R", "-J"} {
		out, err := exec.Command(isoinfo, "-i", path, mode, "-f").CombinedOutput()
		if err != nil {
			t.Fatalf("isoinfo %s: %v\n%s", mode, err, out)
		}
		for _, n := range []string{MetaDataFile, UserDataFile, NetworkConfigFile} {
			if !strings.Contains(string(out), "/"+n+"\n") {
				t.Fatalf("isoinfo %s: no %s in\n%s", mode, n, out)
			}
		}
	}
}
