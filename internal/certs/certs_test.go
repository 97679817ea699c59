package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
)

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	ca, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err != nil {
		t.Fatalf("EnsureCA: %v", err)
	}
	return ca, dir
}

func pool(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(ca.CertPEM)
	return p
}

func TestEnsureCACreatesFiles(t *testing.T) {
	ca, dir := newCA(t)
	modes := map[string]fs.FileMode{CAFile: 0o644, CAKeyFile: 0o600, ClientFile: 0o644, ClientKeyFile: 0o600}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", name, got, want)
		}
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, CAFile))
	if !bytes.Equal(onDisk, ca.CertPEM) {
		t.Error("ca.pem differs from CA.CertPEM")
	}
	c := parseCert(t, ca.CertPEM)
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA=%v KeyUsage=%v", c.IsCA, c.KeyUsage)
	}
	if time.Until(c.NotAfter) < 365*24*time.Hour {
		t.Errorf("CA expires too soon: %v", c.NotAfter)
	}
	for _, f := range []string{CAKeyFile, ClientKeyFile} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		if b, _ := pem.Decode(data); b == nil || b.Type != "EC PRIVATE KEY" {
			t.Errorf("%s is not a PEM EC key", f)
		}
	}
}

func TestEnsureCALoadsTheSameCA(t *testing.T) {
	ca1, dir := newCA(t)
	client1, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	ca2, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err != nil {
		t.Fatalf("EnsureCA again: %v", err)
	}
	if !bytes.Equal(ca1.CertPEM, ca2.CertPEM) {
		t.Fatal("second EnsureCA made another CA")
	}
	client2, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	if !bytes.Equal(client1, client2) {
		t.Error("second EnsureCA replaced the client certificate")
	}
	// A certificate issued by the loaded CA verifies against the first.
	cert, _, err := ca2.IssueServer([]string{"n1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseCert(t, cert).Verify(x509.VerifyOptions{Roots: pool(ca1), DNSName: "n1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("cert from the reloaded CA does not verify: %v", err)
	}
}

func TestEnsureCARestoresMissingClientCert(t *testing.T) {
	ca, dir := newCA(t)
	_ = os.Remove(filepath.Join(dir, ClientFile))
	_ = os.Remove(filepath.Join(dir, ClientKeyFile))
	ca2, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.CertPEM, ca2.CertPEM) {
		t.Error("CA replaced when only the client cert was missing")
	}
	data, err := os.ReadFile(filepath.Join(dir, ClientFile))
	if err != nil {
		t.Fatalf("client cert not written again: %v", err)
	}
	if _, err := parseCert(t, data).Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert: %v", err)
	}
}

func TestEnsureCAGarbage(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, CAFile), []byte("garbage"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("garbage"), 0o600)
	if _, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir)); err == nil {
		t.Fatal("EnsureCA on a garbage CA succeeded")
	}
	// The broken CA is left for the user to look at, not replaced.
	if got, _ := os.ReadFile(filepath.Join(dir, CAFile)); string(got) != "garbage" {
		t.Errorf("ca.pem was overwritten: %q", got)
	}
}

func TestIssueServerVerifies(t *testing.T) {
	ca, _ := newCA(t)
	names := []string{"node-1", "node-1.lab"}
	ips := []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")}
	certPEM, keyPEM, err := ca.IssueServer(names, ips)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "EC PRIVATE KEY" {
		t.Fatalf("server key is not a PEM EC key")
	}
	c := parseCert(t, certPEM)
	if c.Subject.CommonName != "node-1" {
		t.Errorf("CN = %q, want the first name", c.Subject.CommonName)
	}
	for _, host := range []string{"node-1", "node-1.lab", "10.0.0.5", "fd00::5"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("Verify for %s: %v", host, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "other", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("server cert verifies for a name it does not hold")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("server cert verifies for client auth")
	}
	other, _ := newCA(t)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(other), DNSName: "node-1"}); err == nil {
		t.Error("server cert verifies against another CA")
	}
	// The key matches the certificate.
	kb, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("server key does not match the certificate")
	}
}

func TestClientCertVerifies(t *testing.T) {
	ca, dir := newCA(t)
	data, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	c := parseCert(t, data)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert for client auth: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client cert verifies for server auth")
	}
	kd, _ := os.ReadFile(filepath.Join(dir, ClientKeyFile))
	kb, _ := pem.Decode(kd)
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("key.pem does not match cert.pem")
	}
}

func TestServerCertValid(t *testing.T) {
	ca, _ := newCA(t)
	names := []string{"a", "b"}
	ips := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("192.168.1.1")}
	cert, _, err := ca.IssueServer(names, ips)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newCA(t)
	otherCert, _, _ := other.IssueServer(names, ips)
	cases := []struct {
		name  string
		cert  []byte
		names []string
		ips   []net.IP
		want  bool
	}{
		{"same", cert, names, ips, true},
		{"same, other order", cert, []string{"b", "a"}, []net.IP{net.ParseIP("192.168.1.1"), net.ParseIP("10.0.0.1")}, true},
		{"same IP as 4-in-16 bytes", cert, names, []net.IP{net.ParseIP("10.0.0.1").To16(), net.ParseIP("192.168.1.1").To4()}, true},
		{"changed IP", cert, names, []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("192.168.1.1")}, false},
		{"IP added", cert, names, append(append([]net.IP{}, ips...), net.ParseIP("10.0.0.9")), false},
		{"IP removed", cert, names, ips[:1], false},
		{"name changed", cert, []string{"a", "c"}, ips, false},
		{"name added", cert, []string{"a", "b", "c"}, ips, false},
		{"another CA", otherCert, names, ips, false},
		{"garbage", []byte("garbage"), names, ips, false},
		{"PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("xx")}), names, ips, false},
		{"empty", nil, names, ips, false},
	}
	for _, c := range cases {
		if got := ca.ServerCertValid(c.cert, c.names, c.ips); got != c.want {
			t.Errorf("%s: ServerCertValid = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestIssueServerNoNames(t *testing.T) {
	ca, _ := newCA(t)
	cert, _, err := ca.IssueServer(nil, []net.IP{net.ParseIP("10.1.1.1")})
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, cert)
	if c.Subject.CommonName == "" {
		t.Error("empty CN")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "10.1.1.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("Verify by IP: %v", err)
	}
	if !ca.ServerCertValid(cert, nil, []net.IP{net.ParseIP("10.1.1.1")}) {
		t.Error("ServerCertValid = false for its own names and IPs")
	}
}

func TestServerCertValidNearExpiry(t *testing.T) {
	ca, _ := newCA(t)
	names := []string{"a"}
	ips := []net.IP{net.ParseIP("10.0.0.1")}
	issue := func(notAfter time.Time) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			DNSNames:     names,
			IPAddresses:  ips,
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &ca.key.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	if !ca.ServerCertValid(issue(time.Now().Add(365*24*time.Hour)), names, ips) {
		t.Error("a cert valid for a year is not valid")
	}
	if ca.ServerCertValid(issue(time.Now().Add(10*24*time.Hour)), names, ips) {
		t.Error("a cert expiring in 10 days is still valid")
	}
}

// A CA key that exists but cannot be read is an error, never a reason to
// make a new CA (that would orphan every machine's certificates). A
// symlink loop stands in for an unreadable file, as tests run as root.
func TestEnsureCAUnreadableKeyIsAnError(t *testing.T) {
	ca, dir := newCA(t)
	keyPath := filepath.Join(dir, CAKeyFile)
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keyPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(keyPath); err == nil {
		t.Fatal("a symlink loop reads")
	}
	_, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err == nil {
		t.Error("EnsureCA with an unreadable ca-key.pem succeeded")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, CAFile)); !bytes.Equal(got, ca.CertPEM) {
		t.Error("EnsureCA replaced ca.pem because ca-key.pem could not be read")
	}
}

// The client pair is whole: a missing key.pem is made again with its cert.
func TestEnsureCARestoresMissingClientKey(t *testing.T) {
	ca, dir := newCA(t)
	if err := os.Remove(filepath.Join(dir, ClientKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir)); err != nil {
		t.Fatal(err)
	}
	kd, err := os.ReadFile(filepath.Join(dir, ClientKeyFile))
	if err != nil {
		t.Fatalf("key.pem not restored: %v", err)
	}
	cd, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	kb, _ := pem.Decode(kd)
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, cd)
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("restored key.pem does not match cert.pem")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
}

// lockFor is the CA lock of the store whose certs/ folder is dir.
func lockFor(t *testing.T, dir string) Locker {
	t.Helper()
	st, err := store.New(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	return st.LockCA
}
