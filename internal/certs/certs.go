// Package certs makes the CA, the client certificate and each daemon's
// server certificate that secure dockerd's TCP socket.
package certs

import (
	"context"
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

// Locker takes the lock that makes the CA's creation one step for every
// goroutine and process using the store (store.LockCA).
type Locker func(ctx context.Context) (unlock func(), err error)

// EnsureCA loads the CA in dir, creating it and a client certificate the
// first time. It works under lock: two processes or goroutines that find no
// CA must not each write half of one (a ca-key.pem of one and a ca.pem of
// the other).
func EnsureCA(ctx context.Context, dir string, write writeFile, lock Locker) (*CA, error) {
	unlock, err := lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("the CA in %s: %w", dir, err)
	}
	defer unlock()
	ca, err := LoadCA(dir)
	if err == nil {
		if exists(filepath.Join(dir, ClientFile)) && exists(filepath.Join(dir, ClientKeyFile)) {
			return ca, nil
		}
		return ca, ca.writeClient(dir, write)
	}
	// Only a CA that is not there at all is made anew: one that cannot be
	// read is an error, or every machine's certificates would be orphaned.
	if !errors.Is(err, ErrNoCA) {
		return nil, err
	}
	if ca, err = createCA(dir, write); err != nil {
		return nil, err
	}
	return ca, ca.writeClient(dir, write)
}

// createCA makes a CA and writes its key and certificate in dir.
func createCA(dir string, write writeFile) (*CA, error) {
	certPEM, keyPEM, err := makeCA(time.Now())
	if err != nil {
		return nil, err
	}
	if err := write(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := write(filepath.Join(dir, CAFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, time.Now())
}

// ErrNoCA means dir holds neither ca.pem nor ca-key.pem.
var ErrNoCA = errors.New("no CA yet")

// LoadCA reads the CA in dir and writes nothing: ErrNoCA when there is none,
// an error naming the file and what to do when it is half there, does not
// match its key or has expired.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the CA in %s cannot be read: %w", dir, err)
		}
	}
	switch {
	case err1 != nil && err2 != nil:
		return nil, fmt.Errorf("%s: %w", dir, ErrNoCA)
	case err1 != nil || err2 != nil:
		return nil, fmt.Errorf("the CA in %s is half there (%s and %s must both exist): restore the missing file or remove both to make a new CA (then run 'machine regenerate-certs' on every machine)", dir, CAFile, CAKeyFile)
	}
	ca, err := parseCA(certPEM, keyPEM, time.Now())
	if err != nil {
		return nil, fmt.Errorf("the CA in %s: %w", dir, err)
	}
	return ca, nil
}

// TemporaryCA makes a CA in memory that is never written: what `cluster
// plan` compares a host's certificates with when the store has no CA yet.
func TemporaryCA() (*CA, error) {
	certPEM, keyPEM, err := makeCA(time.Now())
	if err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, time.Now())
}

// newCA makes a CA certificate valid from now and its key, as PEM.
func makeCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"shoal"}, CommonName: "shoal CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
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

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// parseCA checks what a CA must be to sign certificates that verify: a CA
// certificate, valid at now, whose public key is the key's.
func parseCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM: restore both from a backup, or remove both to make a new CA (then run 'machine regenerate-certs' on every machine)", CAFile, CAKeyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	if err := checkCA(cert, key, now); err != nil {
		return nil, err
	}
	return &CA{CertPEM: certPEM, cert: cert, key: key}, nil
}

// checkCA checks that cert is a CA certificate of key, valid at now.
func checkCA(cert *x509.Certificate, key *ecdsa.PrivateKey, now time.Time) error {
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("%s is not the key of %s (the two come from different CAs): restore the pair from a backup, or remove both to make a new CA (then run 'machine regenerate-certs' on every machine)", CAKeyFile, CAFile)
	}
	if !cert.IsCA {
		return fmt.Errorf("%s is not a CA certificate: remove %s and %s to make a new CA (then run 'machine regenerate-certs' on every machine)", CAFile, CAFile, CAKeyFile)
	}
	if now.After(cert.NotAfter) {
		return fmt.Errorf("%s expired on %s: certificates it signs verify nowhere. Remove %s and %s to make a new CA, then run 'machine regenerate-certs' on every machine", CAFile, cert.NotAfter.UTC().Format(time.DateOnly), CAFile, CAKeyFile)
	}
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%s is valid only from %s: check this computer's clock", CAFile, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
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
