package machine

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
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
	if _, err := certs.Renew(context.Background(), dir, due, now, store.WriteFileAtomic, m.Store.LockCA); err != nil {
		return due, err
	}
	what := "client certificate"
	if due.CA {
		// Until a machine is provisioned again its dockerd trusts the old
		// CA only: say so.
		what = "CA (it expired or expires within 30 days): each machine's server certificate is issued again when it is provisioned ('cluster up' rolls the dockerd restarts one node at a time; a machine of no cluster: 'machine provision NAME'), and until then 'machine env' does not reach it"
	}
	m.Progress.Event("certs", "renew", ui.Changed, what)
	return due, nil
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
