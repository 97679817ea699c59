package certs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
)

func TestDueAndExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		end  time.Time
		due  bool
		text string
	}{
		{now.Add(3 * 365 * 24 * time.Hour), false, "2029-11-30"},
		{now.Add(31 * 24 * time.Hour), false, "2027-01-01"},
		{now.Add(10 * 24 * time.Hour), true, "2026-12-11 (in 10d: renew)"},
		{now.Add(-time.Hour), true, "2026-12-01 (expired: renew)"},
		{time.Time{}, true, ""},
	} {
		if got := Due(tc.end, now); got != tc.due {
			t.Errorf("Due(%v): %v, want %v", tc.end, got, tc.due)
		}
		if got := Expiry(tc.end, now); got != tc.text {
			t.Errorf("Expiry(%v): %q, want %q", tc.end, got, tc.text)
		}
	}
}

func TestDueInAndRenew(t *testing.T) {
	_, dir := newCA(t)
	now := time.Now()
	if r, err := DueIn(dir, now); err != nil || r.CA || r.Client {
		t.Fatalf("a new CA needs nothing: %+v %v", r, err)
	}
	if r, err := DueIn(filepath.Join(t.TempDir(), "none"), now); err != nil || r.CA || r.Client {
		t.Fatalf("no CA yet needs nothing: %+v %v", r, err)
	}
	// 2.99 years later the CA is due, and with it everything.
	later := now.Add(3*365*24*time.Hour - 10*24*time.Hour)
	r, err := DueIn(dir, later)
	if err != nil || !r.CA || !r.Client {
		t.Fatalf("due CA: %+v %v", r, err)
	}
	oldCA, _ := os.ReadFile(filepath.Join(dir, CAFile))
	oldKey, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	ca, err := Renew(context.Background(), dir, r, later, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ca.CertPEM, oldCA) {
		t.Fatal("the CA was not replaced")
	}
	// The old CA is kept aside, not lost.
	kept, _ := filepath.Glob(filepath.Join(dir, "replaced-*", CAKeyFile))
	if len(kept) != 1 {
		t.Fatalf("old CA key kept: %v", kept)
	}
	if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, oldKey) {
		t.Error("the kept key is not the old one")
	}
	if st, err := os.Stat(kept[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kept key mode: %v %v", st, err)
	}
	// The new client certificate is signed by the new CA.
	client, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	if parseCert(t, client).CheckSignatureFrom(ca.cert) != nil {
		t.Error("client certificate not signed by the new CA")
	}
	// A server certificate of the old CA is no longer valid: provisioning
	// issues it again.
	oldCAParsed, err := parseCA(oldCA, oldKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := oldCAParsed.IssueServer([]string{"m1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ca.ServerCertValid(cert, []string{"m1"}, nil) {
		t.Error("a server certificate of the replaced CA still counts as valid")
	}
}

func TestRenewClientOnly(t *testing.T) {
	ca, dir := newCA(t)
	old, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	got, err := Renew(context.Background(), dir, Renewal{Client: true}, time.Now(), fsutil.WriteFileAtomic, lockFor(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.CertPEM, ca.CertPEM) {
		t.Error("the CA changed though only the client certificate was due")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, ClientFile)); bytes.Equal(now, old) {
		t.Error("the client certificate was not issued again")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "replaced-*")); len(m) != 0 {
		t.Errorf("nothing should be set aside: %v", m)
	}
	if _, err := DueIn(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
}
