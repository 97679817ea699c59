package libvirt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/drivers/driverutil"
)

// Files in the machine's folder.
const (
	// StateFile records what the driver made: the domain, its volumes, MAC,
	// address and reservation, so that rm removes exactly those.
	StateFile = "libvirt.json"
	// HostKeyFile and HostKeyPubFile are the guest's SSH host key, made by
	// shoal and handed to the guest in the seed.
	HostKeyFile    = "libvirt_host_ed25519_key"
	HostKeyPubFile = HostKeyFile + ".pub"
)

// stateVersion is the version of StateFile this code writes.
const stateVersion = 1

// Timings.
const (
	pollInterval = time.Second
	// stopTimeout is how long an ACPI shutdown may take before the domain
	// is destroyed; a guest under emulation is slow to shut down.
	stopTimeout = 3 * time.Minute
	// shutdownResend: a power-button press during early boot is lost (no
	// one listens yet), so it is pressed again.
	shutdownResend = 15 * time.Second
	// bootTimeout bounds the waits for the lease and for SSH when the
	// caller's context has no deadline.
	bootTimeout = 10 * time.Minute
)

// machineState is StateFile.
type machineState struct {
	Version    int    `json:"version"`
	Domain     string `json:"domain"`
	UUID       string `json:"uuid,omitempty"`
	DomainType string `json:"domainType,omitempty"`
	MAC        string `json:"mac"`
	IP         string `json:"ip,omitempty"`
	Network    string `json:"network"`
	Pool       string `json:"pool"`
	BaseVolume string `json:"baseVolume,omitempty"`
	DiskVolume string `json:"diskVolume,omitempty"`
	SeedVolume string `json:"seedVolume,omitempty"`
	// Reserved is the IP of the DHCP host entry made for MAC, "" when none.
	Reserved   string `json:"reserved,omitempty"`
	InstanceID string `json:"instanceId"`
	ConsoleLog string `json:"consoleLog,omitempty"`
	HostKeyFP  string `json:"hostKeyFingerprint,omitempty"`
}

func loadState(dir string) (machineState, bool, error) {
	var s machineState
	found, err := driverutil.LoadState(filepath.Join(dir, StateFile), stateVersion, &s)
	if err != nil {
		return machineState{}, false, fmt.Errorf("libvirt driver state: %w", err)
	}
	return s, found, nil
}

// saveState writes the state atomically (temp file + rename), 0600.
func saveState(dir string, s machineState) error {
	s.Version = stateVersion
	if err := driverutil.SaveState(filepath.Join(dir, StateFile), s); err != nil {
		return fmt.Errorf("libvirt driver state: %w", err)
	}
	return nil
}

// ensureHostKey returns the guest's host key, made on first use.
func ensureHostKey(dir string) (driverutil.HostKey, error) {
	return driverutil.LoadOrCreateHostKey(dir, HostKeyFile)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withDefaultTimeout bounds ctx by d unless it has a deadline already.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// chooseDomainType decides what "auto" means: kvm when libvirt offers it,
// the CPU has hardware virtualisation and (for a local hypervisor) a probe
// VM really runs; qemu (emulation) otherwise. The reason is for messages.
func chooseDomainType(ctx context.Context, wanted string, capsKVM, local bool) (string, string) {
	switch wanted {
	case DomainTypeKVM, DomainTypeQEMU:
		return wanted, "asked for"
	}
	if !capsKVM {
		return DomainTypeQEMU, "libvirt offers no kvm domains"
	}
	if !local {
		return DomainTypeKVM, "the remote hypervisor offers kvm"
	}
	if !cpuHasVirtualization() {
		// E.g. a VM whose /dev/kvm is a paravirtual backend (kvm_pvm)
		// that cannot boot a BIOS: its guests fail in SeaBIOS.
		return DomainTypeQEMU, "the CPU has no vmx/svm: /dev/kvm cannot boot ordinary guests"
	}
	if err := probeKVM(ctx); err != nil {
		return DomainTypeQEMU, "KVM does not work here: " + err.Error()
	}
	return DomainTypeKVM, "KVM works"
}

// cpuHasVirtualization says whether /proc/cpuinfo lists vmx or svm.
func cpuHasVirtualization() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
		return false
	}
	return false
}

// isLocalURI says whether uri names a hypervisor on this host.
func isLocalURI(uri string) bool {
	i := strings.Index(uri, "://")
	if i < 0 {
		return true
	}
	scheme, rest := uri[:i], uri[i+3:]
	if strings.Contains(scheme, "+") && !strings.HasSuffix(scheme, "+unix") {
		return false
	}
	return strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "localhost/")
}
