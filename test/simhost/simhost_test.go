package simhost

import (
	"context"
	"github.com/shoal-dev/shoal/internal/remote"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
)

// TestHostOverSSH: a simulated host answers sshrun's client: a root batch
// (files over SFTP, then one script) changes it, the facts probe's
// sections read what changed, and a command it does not know is recorded.
func TestHostOverSSH(t *testing.T) {
	lab, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	h, err := lab.Add("h1", Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := writeKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sshrun.Dial(ctx, sshrun.Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: h.Port, User: "root", KeyPath: key}, KnownHostsPath: filepath.Join(dir, "known_hosts")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.RunBatch(ctx, []sshrun.Op{
		{Label: "hosts", File: &sshrun.File{Path: "/etc/hosts", Data: []byte("127.0.0.1 localhost\n10.20.0.1 h1\n"), Mode: 0o644}},
		{Label: "hostname", Cmd: `printf '%s\n' 'h1' > /etc/hostname && hostname 'h1'`},
		{Label: "service", Cmd: "systemctl daemon-reload && systemctl restart docker"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := h.File("/etc/hosts"); !strings.Contains(got, "10.20.0.1 h1") {
		t.Errorf("/etc/hosts = %q", got)
	}
	if c := h.Changes(); len(c) != 3 {
		t.Errorf("changes = %q, want the file, the hostname and the restart", c)
	}
	probe := "# shoal facts probe\necho '@@n1 hostname'; { hostname; } 2>/dev/null; echo\necho '@@n1 dockerd-pid'; { echo \"$shoal_dpid\"; } 2>/dev/null; echo\necho '@@n1 end'"
	res, err := c.RunSudo(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	if want := "@@n1 hostname\nh1\n\n@@n1 dockerd-pid\n701\n\n@@n1 end\n"; string(res.Stdout) != want {
		t.Errorf("probe answered %q, want %q", res.Stdout, want)
	}
	if _, err := c.RunSudo(ctx, "frobnicate --all"); err != nil {
		t.Fatal(err)
	}
	if u := h.Unknown(); len(u) != 1 || u[0] != "frobnicate --all" {
		t.Errorf("unknown = %q", u)
	}
	if lab.Sessions.Load() == 0 || lab.Logins.Load() != 1 || lab.BytesIn.Load() == 0 {
		t.Errorf("sessions %d, logins %d, bytes %d", lab.Sessions.Load(), lab.Logins.Load(), lab.BytesIn.Load())
	}
}

func writeKey(t *testing.T, dir string) string {
	t.Helper()
	pem, _, err := sshrun.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id")
	if err := os.WriteFile(p, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
