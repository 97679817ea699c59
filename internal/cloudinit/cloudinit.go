// Package cloudinit writes NoCloud seeds: the meta-data, user-data and
// network-config files cloud-init reads at first boot, and the ISO9660 volume
// labelled "cidata" that carries them to a VM.
//
// The documents are written as JSON, which is YAML too: cloud-init parses
// them as YAML, and no YAML emitter's quoting rules have to be trusted with
// keys and PEM blocks.
package cloudinit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Seed is what a new VM is told at first boot.
type Seed struct {
	// InstanceID identifies this instance to cloud-init: a new ID makes
	// cloud-init run its first-boot modules again.
	InstanceID string
	Hostname   string
	// User is created with passwordless sudo and bash as its shell, its
	// password locked.
	User           string
	AuthorizedKeys []string
	// HostKeyPrivatePEM is an ed25519 private key in OpenSSH PEM form,
	// installed as the guest's SSH host key so that the host key is known
	// before the first contact (no trust on first use).
	HostKeyPrivatePEM []byte
	// HostKeyPublic is HostKeyPrivatePEM's public key, authorized_keys form.
	HostKeyPublic string
	// Interfaces configures the guest's network. Empty: DHCP on every
	// interface whose name starts with "e".
	Interfaces []Interface
}

// Interface is one network interface of the guest, found by its MAC.
type Interface struct {
	MAC string
	// Address is a CIDR (192.168.56.10/24); empty means DHCP.
	Address string
	// Gateway is the default route's next hop for a static Address; empty
	// means no default route on this interface.
	Gateway string
}

// sshdDropIn makes sshd offer only the host key shoal generated: an SSH
// client that prefers another key type (x/crypto/ssh tries ECDSA before
// ed25519) would otherwise see a key that is not the pinned one.
const sshdDropIn = "# Written by shoal: offer only the host key pinned by the client.\nHostKey /etc/ssh/ssh_host_ed25519_key\n"

// Validate reports what makes the seed unusable.
func (s Seed) Validate() error {
	var errs []error
	if s.InstanceID == "" {
		errs = append(errs, errors.New("instance id is empty"))
	}
	if s.Hostname == "" {
		errs = append(errs, errors.New("hostname is empty"))
	}
	if s.User == "" {
		errs = append(errs, errors.New("user is empty"))
	}
	if s.User == "root" {
		errs = append(errs, errors.New(`user must not be "root"`))
	}
	if (len(s.HostKeyPrivatePEM) == 0) != (s.HostKeyPublic == "") {
		errs = append(errs, errors.New("host key: both the private and the public key are needed"))
	}
	for i, ifc := range s.Interfaces {
		if ifc.MAC == "" {
			errs = append(errs, fmt.Errorf("interface %d: MAC is empty", i))
		}
		if ifc.Address == "" && ifc.Gateway != "" {
			errs = append(errs, fmt.Errorf("interface %d: gateway without a static address", i))
		}
	}
	return errors.Join(errs...)
}

// MetaData returns the meta-data file.
func (s Seed) MetaData() []byte {
	return mustJSON(map[string]string{
		"instance-id":    s.InstanceID,
		"local-hostname": s.Hostname,
	})
}

type userConfig struct {
	Name              string   `json:"name"`
	Gecos             string   `json:"gecos,omitempty"`
	Sudo              string   `json:"sudo"`
	Shell             string   `json:"shell"`
	LockPasswd        bool     `json:"lock_passwd"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
}

type writeFile struct {
	Path        string `json:"path"`
	Content     string `json:"content"`
	Permissions string `json:"permissions"`
	Owner       string `json:"owner"`
}

type cloudConfig struct {
	Hostname         string            `json:"hostname"`
	PreserveHostname bool              `json:"preserve_hostname"`
	ManageEtcHosts   string            `json:"manage_etc_hosts"`
	Users            []userConfig      `json:"users"`
	SSHPwauth        bool              `json:"ssh_pwauth"`
	DisableRoot      bool              `json:"disable_root"`
	SSHDeleteKeys    bool              `json:"ssh_deletekeys"`
	SSHGenKeyTypes   []string          `json:"ssh_genkeytypes"`
	SSHKeys          map[string]string `json:"ssh_keys,omitempty"`
	WriteFiles       []writeFile       `json:"write_files,omitempty"`
}

// UserData returns the user-data file (#cloud-config).
func (s Seed) UserData() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}
	keys := make([]string, 0, len(s.AuthorizedKeys))
	for _, k := range s.AuthorizedKeys {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	cc := cloudConfig{
		Hostname: s.Hostname,
		// Only the 127.0.1.1 line for the hostname (sudo warns without
		// it); the rest of /etc/hosts is the provisioner's.
		ManageEtcHosts: "localhost",
		Users: []userConfig{{
			Name:              s.User,
			Gecos:             "shoal",
			Sudo:              "ALL=(ALL) NOPASSWD:ALL",
			Shell:             "/bin/bash",
			LockPasswd:        true,
			SSHAuthorizedKeys: keys,
		}},
		DisableRoot:   true,
		SSHDeleteKeys: true,
		// Keys the image came with are deleted; with ours given, none is
		// generated: the guest offers exactly the pinned key.
		SSHGenKeyTypes: []string{"ed25519"},
	}
	if len(s.HostKeyPrivatePEM) > 0 {
		pub := strings.TrimSpace(s.HostKeyPublic)
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err != nil {
			return nil, fmt.Errorf("cloud-init seed: host public key: %w", err)
		}
		if _, err := ssh.ParseRawPrivateKey(s.HostKeyPrivatePEM); err != nil {
			return nil, fmt.Errorf("cloud-init seed: host private key: %w", err)
		}
		cc.SSHKeys = map[string]string{
			"ed25519_private": string(s.HostKeyPrivatePEM),
			"ed25519_public":  pub,
		}
		cc.WriteFiles = []writeFile{{
			Path:        "/etc/ssh/sshd_config.d/10-shoal-hostkey.conf",
			Content:     sshdDropIn,
			Permissions: "0644",
			Owner:       "root:root",
		}}
	} else {
		// No pinned key: let the guest make its usual set.
		cc.SSHGenKeyTypes = []string{"rsa", "ecdsa", "ed25519"}
	}
	body, err := marshal(cc)
	if err != nil {
		return nil, err
	}
	return append([]byte("#cloud-config\n"), body...), nil
}

type match struct {
	Name       string `json:"name,omitempty"`
	MACAddress string `json:"macaddress,omitempty"`
}

type route struct {
	To  string `json:"to"`
	Via string `json:"via"`
}

type ethernet struct {
	Match     match    `json:"match"`
	DHCP4     bool     `json:"dhcp4"`
	Addresses []string `json:"addresses,omitempty"`
	Routes    []route  `json:"routes,omitempty"`
}

type networkV2 struct {
	Version   int                 `json:"version"`
	Ethernets map[string]ethernet `json:"ethernets"`
}

// NetworkConfig returns the network-config file (version 2).
func (s Seed) NetworkConfig() []byte {
	n := networkV2{Version: 2, Ethernets: map[string]ethernet{}}
	if len(s.Interfaces) == 0 {
		n.Ethernets["all-en"] = ethernet{Match: match{Name: "e*"}, DHCP4: true}
		return mustJSON(n)
	}
	for i, ifc := range s.Interfaces {
		e := ethernet{Match: match{MACAddress: strings.ToLower(ifc.MAC)}}
		if ifc.Address == "" {
			e.DHCP4 = true
		} else {
			e.Addresses = []string{ifc.Address}
			if ifc.Gateway != "" {
				// "0.0.0.0/0" rather than "default": older cloud-init
				// releases (CentOS 7's) know only the former.
				e.Routes = []route{{To: "0.0.0.0/0", Via: ifc.Gateway}}
			}
		}
		n.Ethernets[fmt.Sprintf("nic%d", i)] = e
	}
	return mustJSON(n)
}

// GenerateHostKey makes an ed25519 SSH host key: the private key in OpenSSH
// PEM form and the public key in authorized_keys form (no newline).
func GenerateHostKey() (privatePEM []byte, publicAuthorized string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "shoal host key")
	if err != nil {
		return nil, "", fmt.Errorf("marshal host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("host public key: %w", err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), nil
}

// HostKeyFingerprint returns the SHA256:... fingerprint of an
// authorized_keys-form public key, as ssh-keygen -l prints it.
func HostKeyFingerprint(publicAuthorized string) (string, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicAuthorized))
	if err != nil {
		return "", fmt.Errorf("parse host public key: %w", err)
	}
	return ssh.FingerprintSHA256(pk), nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Indented so that every key is followed by ": ", which YAML 1.1
	// parsers (PyYAML) need in flow mappings.
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode cloud-init document: %w", err)
	}
	return buf.Bytes(), nil
}

// mustJSON encodes documents made only of strings, bools and ints, which
// cannot fail to encode.
func mustJSON(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
