package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RenewWithin is how close to its end a certificate is renewed: `up` and
// `provision` renew any that expires sooner.
const RenewWithin = 30 * 24 * time.Hour

// NotAfter reads when a PEM certificate expires.
func NotAfter(certPEM []byte) (time.Time, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return time.Time{}, errors.New("not a PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

// Due tells whether a certificate that expires at notAfter must be renewed
// now.
func Due(notAfter, now time.Time) bool { return notAfter.Sub(now) < RenewWithin }

// Expiry is when a certificate expires, in words for a table: the date,
// and what to do when it is due ("" for no certificate).
func Expiry(notAfter, now time.Time) string {
	if notAfter.IsZero() {
		return ""
	}
	s := notAfter.UTC().Format("2006-01-02")
	switch {
	case !notAfter.After(now):
		return s + " (expired: renew)"
	case Due(notAfter, now):
		return fmt.Sprintf("%s (in %dd: renew)", s, int(notAfter.Sub(now).Hours()/24))
	}
	return s
}

// Renewal is what must be renewed in a CA folder.
type Renewal struct {
	CA, Client bool
}

// DueIn tells what of the CA folder dir must be renewed at now: a CA
// that expires soon (then everything it signed too), or the client
// certificate alone. A folder without a CA needs nothing (EnsureCA makes
// one).
func DueIn(dir string, now time.Time) (Renewal, error) {
	var r Renewal
	ca, err := os.ReadFile(filepath.Join(dir, CAFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	end, err := NotAfter(ca)
	if err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Join(dir, CAFile), err)
	}
	if Due(end, now) {
		return Renewal{CA: true, Client: true}, nil
	}
	if cl, err := os.ReadFile(filepath.Join(dir, ClientFile)); err == nil {
		if end, err := NotAfter(cl); err != nil || Due(end, now) {
			r.Client = true
		}
	}
	return r, nil
}

// setOldCAAside moves the CA and client certificate files of dir, under
// the CA's lock, into dir/replaced-TIMESTAMP/.
func setOldCAAside(ctx context.Context, dir string, now time.Time, lock Locker) error {
	unlock, err := lock(ctx)
	if err != nil {
		return fmt.Errorf("the CA in %s: %w", dir, err)
	}
	defer unlock()
	old := filepath.Join(dir, "replaced-"+now.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	for _, f := range []string{CAKeyFile, CAFile, ClientFile, ClientKeyFile} {
		if err := os.Rename(filepath.Join(dir, f), filepath.Join(old, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Renew renews what r says in dir, under the CA's lock: a new CA (the old
// one kept in dir/replaced-TIMESTAMP/ until the machines trust the new one;
// every certificate it signed is issued again as the machines are
// provisioned) and a new client certificate.
func Renew(ctx context.Context, dir string, r Renewal, now time.Time, write writeFile, lock Locker) (*CA, error) {
	if r.CA {
		if err := setOldCAAside(ctx, dir, now, lock); err != nil {
			return nil, err
		}
		// No CA is there now: EnsureCA makes a new one and its client
		// certificate.
		return EnsureCA(ctx, dir, write, lock)
	}
	ca, err := EnsureCA(ctx, dir, write, lock)
	if err != nil || !r.Client {
		return ca, err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("the CA in %s: %w", dir, err)
	}
	defer unlock()
	return ca, ca.writeClient(dir, write)
}
