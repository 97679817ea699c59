package virtualbox

import (
	"path/filepath"

	"github.com/shoal-dev/shoal/drivers/driverutil"
)

// Files the driver keeps in the machine's folder.
const (
	// StateFile records what the driver made: the VM's UUID, the SSH port,
	// the host-only address, the MACs, the host key's fingerprint.
	StateFile = "virtualbox.json"
	// DiskFile is the machine's own disk, cloned from the cached image.
	DiskFile = "disk.vdi"
	// SeedFile is the NoCloud seed attached as a DVD.
	SeedFile = "seed.iso"
	// ConsoleLog receives the guest's serial console (ttyS0): where to look
	// when a VM never answers SSH.
	ConsoleLog = "console.log"
)

const stateVersion = 1

// machineState is StateFile's content.
type machineState struct {
	Version int    `json:"version"`
	VMName  string `json:"vmName"`
	UUID    string `json:"uuid,omitempty"`
	CfgFile string `json:"cfgFile,omitempty"`
	// Complete is set once the VM is fully configured: a VM found without
	// it is the leftover of an interrupted Create, made again from scratch.
	Complete           bool    `json:"complete"`
	SSHPort            int     `json:"sshPort"`
	SSHUser            string  `json:"sshUser"`
	HostKeyPublic      string  `json:"hostKeyPublic"`
	HostKeyFingerprint string  `json:"hostKeyFingerprint"`
	Network            string  `json:"network"`
	HostOnlyIP         string  `json:"hostonlyIP"`
	Adapter            adapter `json:"adapter"`
	NATMAC             string  `json:"natMAC"`
	HostOnlyMAC        string  `json:"hostonlyMAC"`
}

// loadState reads dir's StateFile; nil when there is none.
func loadState(dir string) (*machineState, error) {
	var s machineState
	found, err := driverutil.LoadState(filepath.Join(dir, StateFile), stateVersion, &s)
	if err != nil || !found {
		return nil, err
	}
	return &s, nil
}

func saveState(dir string, s *machineState) error {
	s.Version = stateVersion
	return driverutil.SaveState(filepath.Join(dir, StateFile), s)
}
