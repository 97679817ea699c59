// Package cloudinit writes NoCloud seeds: the meta-data, user-data and
// network-config files cloud-init reads at first boot, and the ISO9660 volume
// labelled "cidata" that carries them to a VM.
//
// The documents are the templates in templates/cloudinit, written as JSON,
// which is YAML too: cloud-init parses them as YAML, and every value is
// quoted by templates.YAMLString, which both read alike, keys and PEM blocks
// included.
package cloudinit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/templates"
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
		errs = append(errs, ifc.errors(i)...)
	}
	return errors.Join(errs...)
}

// errors are what makes interface i of the seed unusable.
func (ifc Interface) errors(i int) []error {
	var errs []error
	if ifc.MAC == "" {
		errs = append(errs, fmt.Errorf("interface %d: MAC is empty", i))
	}
	if ifc.Address == "" && ifc.Gateway != "" {
		errs = append(errs, fmt.Errorf("interface %d: gateway without a static address", i))
	}
	return errs
}

// MetaData returns the meta-data file.
func (s Seed) MetaData() []byte {
	return must(templates.CloudInitMetaData(templates.MetaData{InstanceID: s.InstanceID, Hostname: s.Hostname}))
}

// UserData returns the user-data file (#cloud-config).
func (s Seed) UserData() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("cloud-init seed: %w", err)
	}
	d := templates.UserData{
		Hostname: s.Hostname,
		User:     s.User,
		// Keys the image came with are deleted; with ours given, none is
		// generated: the guest offers exactly the pinned key.
		SSHGenKeyTypes: []string{"ed25519"},
	}
	for _, k := range s.AuthorizedKeys {
		if k = strings.TrimSpace(k); k != "" {
			d.AuthorizedKeys = append(d.AuthorizedKeys, k)
		}
	}
	if len(s.HostKeyPrivatePEM) > 0 {
		pub := strings.TrimSpace(s.HostKeyPublic)
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err != nil {
			return nil, fmt.Errorf("cloud-init seed: host public key: %w", err)
		}
		if _, err := ssh.ParseRawPrivateKey(s.HostKeyPrivatePEM); err != nil {
			return nil, fmt.Errorf("cloud-init seed: host private key: %w", err)
		}
		d.HostKeyPrivatePEM, d.HostKeyPublic = string(s.HostKeyPrivatePEM), pub
	} else {
		// No pinned key: let the guest make its usual set.
		d.SSHGenKeyTypes = []string{"rsa", "ecdsa", "ed25519"}
	}
	return templates.CloudInitUserData(d)
}

// NetworkConfig returns the network-config file (version 2).
func (s Seed) NetworkConfig() []byte {
	if len(s.Interfaces) == 0 {
		return must(templates.CloudInitNetworkConfig([]templates.Ethernet{{ID: "all-en", Name: "e*", DHCP4: true}}))
	}
	eths := make([]templates.Ethernet, 0, len(s.Interfaces))
	for i, ifc := range s.Interfaces {
		e := templates.Ethernet{ID: fmt.Sprintf("nic%d", i), MAC: strings.ToLower(ifc.MAC)}
		if ifc.Address == "" {
			e.DHCP4 = true
		} else {
			e.Addresses = []string{ifc.Address}
			e.Gateway = ifc.Gateway
		}
		eths = append(eths, e)
	}
	// In the order of their IDs, as the file always listed them (nic10
	// before nic2).
	slices.SortFunc(eths, func(a, b templates.Ethernet) int { return strings.Compare(a.ID, b.ID) })
	return must(templates.CloudInitNetworkConfig(eths))
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

// must is for documents whose values are all strings, bools and ints
// passed through quoting functions that cannot fail: an error is a broken
// embedded template, which the golden tests catch.
func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
