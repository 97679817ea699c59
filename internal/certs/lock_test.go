package certs

import (
	"context"
	"crypto/ecdsa"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
)

// caMatches reads dir's CA pair and the client pair and checks that each key
// is its certificate's.
func caMatches(t *testing.T, dir string) {
	t.Helper()
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA after the race: %v", err)
	}
	cert, _ := os.ReadFile(filepath.Join(dir, ClientFile))
	c := parseCert(t, cert)
	if err := c.CheckSignatureFrom(ca.cert); err != nil {
		t.Errorf("the client certificate is not signed by the CA: %v", err)
	}
}

// TestEnsureCAConcurrent: eight goroutines (each with its own store handle,
// as separate commands would have) on a fresh store, several rounds; the CA
// on disk is always one pair, and everyone got that one.
func TestEnsureCAConcurrent(t *testing.T) {
	for round := 0; round < 6; round++ {
		root := filepath.Join(t.TempDir(), "store")
		var wg sync.WaitGroup
		got := make([][]byte, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := store.New(root)
				if err != nil {
					errs[i] = err
					return
				}
				ca, err := EnsureCA(context.Background(), st.CertsDir(), fsutil.WriteFileAtomic, st.LockCA)
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = ca.CertPEM
			}()
		}
		wg.Wait()
		dir := filepath.Join(root, "certs")
		onDisk, _ := os.ReadFile(filepath.Join(dir, CAFile))
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("round %d, goroutine %d: %v", round, i, errs[i])
			}
			if string(got[i]) != string(onDisk) {
				t.Errorf("round %d, goroutine %d got a CA other than the one on disk", round, i)
			}
		}
		caMatches(t, dir)
	}
}

// TestEnsureCAConcurrentProcesses: the lock holds across processes too
// (this test binary run again as a helper).
func TestEnsureCAConcurrentProcesses(t *testing.T) {
	if dir := os.Getenv("SHOAL_CERTS_HELPER_STORE"); dir != "" {
		st, err := store.New(dir)
		if err == nil {
			_, err = EnsureCA(context.Background(), st.CertsDir(), fsutil.WriteFileAtomic, st.LockCA)
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	for round := 0; round < 3; round++ {
		root := filepath.Join(t.TempDir(), "store")
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureCAConcurrentProcesses$", "-test.count=1")
				cmd.Env = append(os.Environ(), "SHOAL_CERTS_HELPER_STORE="+root)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("helper process: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		caMatches(t, filepath.Join(root, "certs"))
	}
}

// TestEnsureCARefusesMismatchedKey: a ca-key.pem of another CA is refused
// with the file named and what to do; nothing is rewritten.
func TestEnsureCARefusesMismatchedKey(t *testing.T) {
	_, dir := newCA(t)
	_, otherKey, err := makeCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, CAFile))
	_, err = EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err == nil {
		t.Fatal("EnsureCA with a key of another CA succeeded")
	}
	for _, want := range []string{dir, CAKeyFile, CAFile, "regenerate-certs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CAFile)); string(after) != string(before) {
		t.Error("ca.pem was rewritten")
	}
	if _, err := LoadCA(dir); err == nil {
		t.Error("LoadCA with a key of another CA succeeded")
	}
}

// TestEnsureCARefusesExpired: an expired CA is not used to sign anything.
func TestEnsureCARefusesExpired(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	certPEM, keyPEM, err := makeCA(time.Now().Add(-validity - 48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, CAFile), certPEM, 0o644)
	_ = os.WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600)
	_, err = EnsureCA(context.Background(), dir, fsutil.WriteFileAtomic, lockFor(t, dir))
	if err == nil {
		t.Fatal("EnsureCA with an expired CA succeeded")
	}
	for _, want := range []string{dir, CAFile, "expired", "regenerate-certs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if exists(filepath.Join(dir, ClientFile)) {
		t.Error("a client certificate was signed by the expired CA")
	}
}

// TestParseCAChecks is the table of what parseCA refuses.
func TestParseCAChecks(t *testing.T) {
	now := time.Now()
	cert, key, err := makeCA(now)
	if err != nil {
		t.Fatal(err)
	}
	_, key2, _ := makeCA(now)
	for _, tc := range []struct {
		name      string
		cert, key []byte
		at        time.Time
		want      string
	}{
		{"good", cert, key, now, ""},
		{"other key", cert, key2, now, "not the key"},
		{"expired", cert, key, now.Add(validity + time.Hour), "expired"},
		{"not yet valid", cert, key, now.Add(-2 * time.Hour), "clock"},
		{"not PEM", []byte("x"), key, now, "not PEM"},
	} {
		ca, err := parseCA(tc.cert, tc.key, tc.at)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && !ca.key.Public().(*ecdsa.PublicKey).Equal(ca.cert.PublicKey):
			t.Errorf("%s: key and certificate differ", tc.name)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// TestTemporaryCAIssues: plan's CA, made in memory, signs.
func TestTemporaryCAIssues(t *testing.T) {
	ca, err := TemporaryCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.IssueServer([]string{"n1"}, nil); err != nil {
		t.Fatal(err)
	}
}
