package libvirt

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProbeKVM runs the probe where /dev/kvm opens: a host where KVM works
// answers nil. Elsewhere it is skipped (CI without KVM, a user without
// access to /dev/kvm).
func TestProbeKVM(t *testing.T) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("/dev/kvm: %v", err)
	}
	unix.Close(fd)
	if err := probeKVM(context.Background()); err != nil {
		t.Skipf("KVM does not run guests here (nested virtualisation?): %v", err)
	}
}
