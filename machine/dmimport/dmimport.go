// Package dmimport brings machines over from a docker-machine store
// (machine import): it reads each machine's config.json, decides what
// shoal can take over and why not, reads the hosts' SSH keys, and writes
// the shoal machines (generic ones as ssh machines, VirtualBox ones
// adopted by the virtualbox driver as they are). The docker-machine store
// is only read.
package dmimport

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// The types below carry docker-machine's field names: its config.json
// reads into them, and machine inspect --format and ls --format show
// shoal's machines through them (the templates docker-machine's users
// wrote keep working).

// EngineOptions is HostOptions.EngineOptions.
type EngineOptions struct {
	ArbitraryFlags   []string
	DNS              []string `json:"Dns"`
	GraphDir         string
	Env              []string
	Ipv6             bool
	InsecureRegistry []string
	Labels           []string
	LogLevel         string
	StorageDriver    string
	SelinuxEnabled   bool
	TLSVerify        bool `json:"TlsVerify"`
	RegistryMirror   []string
	InstallURL       string
}

// SwarmOptions is HostOptions.SwarmOptions (shoal's swarm is Swarm mode,
// not the classic swarm these fields described; the flags that still mean
// something are filled).
type SwarmOptions struct {
	IsSwarm        bool
	Address        string
	Discovery      string
	Agent          bool
	Master         bool
	Host           string
	Image          string
	ArbitraryFlags []string
	Env            []string
}

// AuthOptions is HostOptions.AuthOptions.
type AuthOptions struct {
	CertDir              string
	CaCertPath           string
	CaPrivateKeyPath     string
	CaCertRemotePath     string
	ServerCertPath       string
	ServerKeyPath        string
	ClientKeyPath        string
	ServerCertRemotePath string
	ServerKeyRemotePath  string
	ClientCertPath       string
	ServerCertSANs       []string
	StorePath            string
}

// HostOptions is Host.HostOptions.
type HostOptions struct {
	Driver        string
	Memory        int
	Disk          int
	EngineOptions *EngineOptions
	SwarmOptions  *SwarmOptions
	AuthOptions   *AuthOptions
}

// Driver is the part of Host.Driver every docker-machine driver has.
type Driver struct {
	IPAddress   string
	MachineName string
	SSHUser     string
	SSHPort     int
	SSHKeyPath  string
	StorePath   string
	SwarmMaster bool
}

// dmMachine is a docker-machine config.json (libmachine's host, config
// version 3): the driver's fields depend on DriverName.
type dmMachine struct {
	ConfigVersion int
	Driver        json.RawMessage
	DriverName    string
	HostOptions   *HostOptions
	Name          string
}

// dmGeneric is the generic driver's part: the common fields plus the
// engine port and the key the user gave (copied to SSHKeyPath).
type dmGeneric struct {
	Driver
	EnginePort int
	SSHKey     string
}

// dmVirtualBox is the virtualbox driver's part that shoal's driver keeps.
type dmVirtualBox struct {
	Driver
	CPU          int
	Memory       int
	DiskSize     int
	HostOnlyCIDR string
}

// Plan is what `machine import` does with one docker-machine machine.
type Plan struct {
	Name       string
	DriverName string // docker-machine's
	// Driver is shoal's driver; empty when the machine is not importable,
	// and Reason says why.
	Driver  string
	Reason  string
	Host    string
	Port    int
	User    string
	KeyPath string // in the docker-machine store ("" = the ssh-agent)
	// KeyOutside says KeyPath is outside the machine's folder: it is copied
	// only once confirmed.
	KeyOutside bool
	EnginePort int
	CertDir    string // the docker-machine machine's folder: ca.pem cert.pem key.pem
	Address    string // the engine's address
	VirtualBox *dmVirtualBox
	// Fingerprint is the host key seen at import.
	Fingerprint string
}

// DefaultStore is docker-machine's store: $MACHINE_STORAGE_PATH, else
// ~/.docker/machine.
func DefaultStore() string {
	if p := os.Getenv("MACHINE_STORAGE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "machine")
	}
	return filepath.Join(home, ".docker", "machine")
}
