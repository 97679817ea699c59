package virtualbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
)

// TestAdopt: a VM made elsewhere (here: by the driver, whose record is then
// lost, as a docker-machine VM has none) is taken over by reading it only.
func TestAdopt(t *testing.T) {
	h := newHarness(t, host71)
	made := h.driver("dm1", nil)
	must(t, made.Create(ctx(t)))
	vm := h.fake().FindVM("dm1")
	os.Remove(filepath.Join(made.m.Dir, StateFile))

	d := h.driver("dm1", nil)
	mark := h.mark()
	must(t, d.Adopt(ctx(t), Adoption{SSHPort: 50022, SSHUser: "docker", HostOnlyIP: "192.168.99.100", HostKeyFingerprint: "SHA256:x"}))
	t.Logf("calls: %q", h.callsSince(mark))
	for _, c := range h.callsSince(mark) {
		if !strings.HasPrefix(c, "showvminfo") && !strings.HasPrefix(c, "--version") {
			t.Errorf("adopting ran %q: it must only read", c)
		}
	}
	st, err := loadState(d.m.Dir)
	if err != nil || st == nil || st.UUID != vm.UUID || !st.Complete || st.SSHPort != 50022 || st.SSHUser != "docker" || st.HostOnlyIP != "192.168.99.100" {
		t.Fatalf("record after adopt: %+v, %v", st, err)
	}
	wantState(t, d, drivers.Running)
	ep, _ := d.SSH(ctx(t))
	if ep.Port != 50022 || ep.User != "docker" || ep.HostKeyFingerprint != "SHA256:x" {
		t.Errorf("SSH endpoint %+v", ep)
	}
	if addr, _ := d.Address(ctx(t)); addr != "192.168.99.100" {
		t.Errorf("address %q", addr)
	}
	if err := d.Adopt(ctx(t), Adoption{SSHPort: 50022}); err == nil {
		t.Errorf("adopting twice succeeded")
	}
	if err := h.driver("nosuchvm", nil).Adopt(ctx(t), Adoption{SSHPort: 50022}); err == nil {
		t.Errorf("adopting a missing VM succeeded")
	}
}
