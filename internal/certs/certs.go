// Package certs makes the CA, the client certificate and each daemon's
// server certificate that secure dockerd's TCP socket.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// File names in the store's certs/ folder (the docker CLI's DOCKER_CERT_PATH layout).
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ClientFile    = "cert.pem"
	ClientKeyFile = "key.pem"
)

const validity = 3 * 365 * 24 * time.Hour

// CA signs the certificates.
type CA struct {
	CertPEM []byte
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
}

// writeFile is an atomic write (temp + rename) so a crash never leaves half a key.
type writeFile func(path string, data []byte, mode fs.FileMode) error

// EnsureCA loads the CA in dir, creating it and a client certificate the
// first time.
func EnsureCA(dir string, write writeFile) (*CA, error) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, CAFile))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err1 == nil && err2 == nil {
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		if exists(filepath.Join(dir, ClientFile)) && exists(filepath.Join(dir, ClientKeyFile)) {
			return ca, nil
		}
		return ca, ca.writeClient(dir, write)
	}
	// Only a CA that is not there at all is made anew: one that cannot be
	// read is an error, or every machine's certificates would be orphaned.
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the CA in %s cannot be read: %w", dir, err)
		}
	}
	if err1 == nil || err2 == nil {
		return nil, fmt.Errorf("the CA in %s is half there (%s and %s must both exist): restore the missing file or remove both to make a new CA (then run 'machine regenerate-certs' on every machine)", dir, CAFile, CAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"shoal"}, CommonName: "shoal CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := write(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := write(filepath.Join(dir, CAFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	ca, err := parseCA(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	return ca, ca.writeClient(dir, write)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("CA certificate or key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &CA{CertPEM: certPEM, cert: cert, key: key}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func (ca *CA) writeClient(dir string, write writeFile) error {
	cert, key, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"shoal"}, CommonName: "shoal client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return err
	}
	if err := write(filepath.Join(dir, ClientKeyFile), key, 0o600); err != nil {
		return err
	}
	return write(filepath.Join(dir, ClientFile), cert, 0o644)
}

// IssueServer makes a server certificate for the given names and IPs.
func (ca *CA) IssueServer(names []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	cn := "localhost"
	if len(names) > 0 {
		cn = names[0]
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"shoal"}, CommonName: cn},
		DNSNames:    names,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// ServerCertValid tells whether certPEM was signed by ca, is not about to
// expire and covers exactly names and ips: then it need not be issued again.
func (ca *CA) ServerCertValid(certPEM []byte, names []string, ips []net.IP) bool {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || cert.CheckSignatureFrom(ca.cert) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	return sameStrings(cert.DNSNames, names) && sameStrings(ipStrings(cert.IPAddresses), ipStrings(ips))
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a = append([]string(nil), a...)
	b = append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
