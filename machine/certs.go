package machine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// RenewCerts makes the store's CA when there is none, and renews the CA (and so, as each machine is provisioned,
// every server certificate) or the client certificate when it expires
// within certs.RenewWithin. It says what it renewed.
func (m *Manager) RenewCerts(now time.Time) (certs.Renewal, error) {
	dir := m.Store.CertsDir()
	due, err := certs.DueIn(dir, now)
	if err != nil {
		return due, err
	}
	if !due.CA && !due.Client {
		// Made here, once, when missing: the hosts provisioned in parallel
		// after this only read it.
		_, err := m.CA()
		return due, err
	}
	if _, err := certs.Renew(context.Background(), dir, due, now, fsutil.WriteFileAtomic, m.Store.LockCA); err != nil {
		return due, err
	}
	what := "client certificate"
	if due.CA {
		// Until a machine is provisioned again its dockerd trusts the old
		// CA only: say so.
		what = "CA (it expired or expires within 30 days): each machine's server certificate is issued again when it is provisioned ('cluster up' rolls the dockerd restarts one node at a time; a machine of no cluster: 'machine provision NAME'), and until then 'machine env' does not reach it"
	}
	m.Progress.Event("certs", "renew", ui.Changed, what)
	return due, m.syncAllClientCerts()
}

// clientCertFiles are what the docker CLI reads from DOCKER_CERT_PATH, with
// their modes: each machine's folder holds them, as docker-machine's does.
var clientCertFiles = []struct {
	name string
	mode os.FileMode
}{{certs.CAFile, 0o644}, {certs.ClientFile, 0o644}, {certs.ClientKeyFile, 0o600}}

// ClientCertDir is the folder 'machine env' and 'config' point the docker
// CLI at: the machine's own (machines/NAME, as docker-machine's), holding
// copies of the store's CA and client certificate, brought in step here
// when they differ (after a renewal, 'regenerate-certs --client-certs').
// An imported machine keeps its docker-machine set-up (Engine.CertDir).
func (m *Manager) ClientCertDir(mach *store.Machine) (string, error) {
	if mach.Engine.CertDir != "" {
		return mach.Engine.CertDir, nil
	}
	dir := m.Store.MachineDir(mach.Name)
	stale, err := syncClientCerts(m.Store.CertsDir(), dir, m.ReadOnly)
	if err != nil {
		return "", fmt.Errorf("%s: client certificates in %s: %w", mach.Name, dir, err)
	}
	if stale {
		return m.Store.CertsDir(), nil // read-only: the store's own are current
	}
	return dir, nil
}

// syncClientCerts copies the client files from src to dst where they
// differ; read-only, it only says whether dst is stale.
func syncClientCerts(src, dst string, readOnly bool) (stale bool, err error) {
	for _, f := range clientCertFiles {
		data, err := os.ReadFile(filepath.Join(src, f.name))
		if err != nil {
			return false, err
		}
		old, err := os.ReadFile(filepath.Join(dst, f.name))
		if err == nil && bytes.Equal(old, data) {
			continue
		}
		if readOnly {
			return true, nil
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(dst, f.name), data, f.mode); err != nil {
			return false, err
		}
	}
	return false, nil
}

// syncAllClientCerts brings every machine's copies in step after a
// renewal, so a folder a script copies or mounts is current too.
func (m *Manager) syncAllClientCerts() error {
	names, err := m.Store.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		mach, err := m.Store.Load(n)
		if err != nil || mach.Engine.CertDir != "" || !mach.Engine.TLS {
			continue // an unreadable machine is said where it is used
		}
		if _, err := m.ClientCertDir(mach); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CertExpiry says when the machine's TLS stops working: the sooner of its
// server certificate's and the CA's end, with what to do when due.
func (m *Manager) CertExpiry(mach *store.Machine, now time.Time) string {
	if !mach.Engine.TLS {
		return ""
	}
	var end time.Time
	for _, p := range []string{
		filepath.Join(m.Store.MachineDir(mach.Name), store.ServerCertFile),
		filepath.Join(m.Store.CertsDir(), certs.CAFile),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if t, err := certs.NotAfter(data); err == nil && (end.IsZero() || t.Before(end)) {
			end = t
		}
	}
	return certs.Expiry(end, now)
}

// CA returns the store's CA, creating it (and the client certificate) once.
// Machines provisioned in parallel ask at once: one makes it, so that the
// client certificate and its key are of one pair.
func (m *Manager) CA() (*certs.CA, error) {
	m.caMu.Lock()
	defer m.caMu.Unlock()
	if m.ReadOnly {
		// What the CA would be: the store's, or one in memory that signs
		// what a plan compares with the host's files.
		ca, err := certs.LoadCA(m.Store.CertsDir())
		if errors.Is(err, certs.ErrNoCA) {
			return certs.TemporaryCA()
		}
		return ca, err
	}
	// The lock's wait is bounded by the store's LockWait.
	return certs.EnsureCA(context.Background(), m.Store.CertsDir(), fsutil.WriteFileAtomic, m.Store.LockCA)
}

// serverTLS returns the machine's server certificate, issued again only when
// its names or addresses changed.
func (m *Manager) serverTLS(mach *Machine) (*provision.TLS, error) {
	ca, err := m.CA()
	if err != nil {
		return nil, err
	}
	names, ips := serverSANs(mach)
	cert, key, err := m.serverCert(ca, mach.Dir, names, ips)
	if err != nil {
		return nil, err
	}
	if err := m.writeFile(filepath.Join(mach.Dir, store.CAFile), ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	// The docker CLI's files, beside the server's, as docker-machine keeps
	// them: DOCKER_CERT_PATH is this folder.
	if !m.ReadOnly {
		if _, err := m.ClientCertDir(mach.Machine); err != nil {
			return nil, err
		}
	}
	port := mach.Engine.TLSPort
	port = cmp.Or(port, 2376)
	return &provision.TLS{CA: ca.CertPEM, Cert: cert, Key: key, Port: port}, nil
}

// serverSANs are the names and addresses the server certificate holds:
// the machine's names, the name or address it is reached by, loopback and
// the --engine-tls-san ones.
func serverSANs(mach *Machine) ([]string, []net.IP) {
	sanNames, sanIPs := splitSANs(mach.Engine.TLSSANs)
	names := uniqueSorted(append([]string{mach.Name, mach.Hostname, "localhost"}, sanNames...))
	if h := mach.SSH.Host; h != "" && net.ParseIP(h) == nil {
		names = uniqueSorted(append(names, h)) // the name the host was given by
	}
	ips := append([]net.IP{net.ParseIP("127.0.0.1")}, sanIPs...)
	if ip := net.ParseIP(mach.Address); ip != nil && !ip.IsLoopback() {
		ips = append(ips, ip)
	} else if mach.Address != "" && ip == nil {
		names = uniqueSorted(append(names, mach.Address))
	}
	return names, ips
}

// serverCert returns the server certificate and key in dir, issued anew
// (and written) when they are missing or do not hold names and ips.
func (m *Manager) serverCert(ca *certs.CA, dir string, names []string, ips []net.IP) (cert, key []byte, err error) {
	certPath := filepath.Join(dir, store.ServerCertFile)
	keyPath := filepath.Join(dir, store.ServerKeyFile)
	cert, err1 := os.ReadFile(certPath)
	key, err2 := os.ReadFile(keyPath)
	if err1 == nil && err2 == nil && ca.ServerCertValid(cert, names, ips) {
		return cert, key, nil
	}
	if cert, key, err = ca.IssueServer(names, ips); err != nil {
		return nil, nil, err
	}
	if err := m.writeFile(keyPath, key, 0o600); err != nil {
		return nil, nil, err
	}
	if err := m.writeFile(certPath, cert, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// writeFile writes a file of the store, unless the manager is read-only.
func (m *Manager) writeFile(path string, data []byte, mode os.FileMode) error {
	if m.ReadOnly {
		return nil
	}
	return fsutil.WriteFileAtomic(path, data, mode)
}

func uniqueSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
