package e2e

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMachineVirtualBoxFake runs `machine create -d virtualbox` against the
// driver's fake VBoxManage (VirtualBox cannot run here), set to Russian by
// VirtualBox's own setting and VBoxSVC's locale: on an Apple Silicon host,
// and with a host-only range the host's networks.conf does not allow. Each
// fails before anything is made, saying why.
func TestMachineVirtualBoxFake(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "VBoxManage")
	build := exec.Command("go", "build", "-o", fake, "./drivers/virtualbox/internal/fakevbox/cmd/VBoxManage")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the fake VBoxManage: %v\n%s", err, out)
	}
	// A qcow2 v3 header is all the fake reads of an image.
	image := filepath.Join(dir, "cloud.qcow2")
	head := make([]byte, 512)
	copy(head, "QFI\xfb")
	binary.BigEndian.PutUint32(head[4:], 3)
	binary.BigEndian.PutUint64(head[24:], 2<<30)
	if err := os.WriteFile(image, head, 0o600); err != nil {
		t.Fatal(err)
	}
	const conf = "/etc/vbox/networks.conf" // the file the driver reads
	for _, tc := range []struct {
		name string
		host map[string]any
		args []string
		want []string
	}{
		{"arm64", map[string]any{"version": "7.1.4r165100", "os": "darwin", "arch": "arm64"}, nil,
			[]string{"runs ARMv8 guests only", "nothing was made"}},
		{"range", map[string]any{"version": "7.1.4r165100", "os": "linux", "networksConfFile": conf}, []string{"--virtualbox-hostonly-cidr", "172.31.250.1/24"},
			[]string{"host-only network 172.31.250.0/24 is not allowed", conf}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.host["language"], tc.host["svcLocale"] = "ru_RU", "ru_RU.UTF-8"
			state := filepath.Join(t.TempDir(), "vbox.json")
			data, _ := json.Marshal(map[string]any{"host": tc.host})
			if err := os.WriteFile(state, data, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("FAKEVBOX_STATE", state)
			t.Setenv("LANG", "ru_RU.UTF-8")
			s := newShoal(t)
			args := append([]string{"create", "-d", "virtualbox", "--virtualbox-vboxmanage", fake, "--virtualbox-image", image,
				"--virtualbox-image-cache", filepath.Join(t.TempDir(), "cache")}, tc.args...)
			r := s.machine(append(args, "vb1")...)
			if r.code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q: %s", w, r.stderr)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(s.storage, "machines")); len(entries) != 0 {
				t.Errorf("a failed create left %d entries in the store", len(entries))
			}
			var after struct {
				VMs, HostOnlyIfs, Media []any
				Calls                   []struct{ Stderr string }
			}
			raw, _ := os.ReadFile(state)
			if err := json.Unmarshal(raw, &after); err != nil {
				t.Fatal(err)
			}
			if len(after.VMs)+len(after.HostOnlyIfs)+len(after.Media) != 0 {
				t.Errorf("VirtualBox holds %d VMs, %d interfaces, %d media", len(after.VMs), len(after.HostOnlyIfs), len(after.Media))
			}
			russian := false
			for _, c := range after.Calls {
				russian = russian || strings.Contains(c.Stderr, "Невозможно найти")
			}
			if !russian {
				t.Error("the fake VirtualBox did not answer in Russian")
			}
		})
	}
}
