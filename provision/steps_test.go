package provision

import (
	"context"
	"strings"
	"testing"
)

func TestMainExecStart(t *testing.T) {
	for _, tc := range []struct{ name, unit, want string }{
		{"plain", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd -H fd://\n", "/usr/bin/dockerd -H fd://"},
		{"drop-in ignored", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd -H fd://\n\n# /etc/systemd/system/docker.service.d/shoal.conf\n[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H tcp://x\n", "/usr/bin/dockerd -H fd://"},
		{"continuation lines (CentOS 7's docker)", "# /usr/lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd-current \\\n          --add-runtime x=y \\\n          $OPTIONS\nExecReload=/bin/kill -s HUP $MAINPID\n",
			"/usr/bin/dockerd-current --add-runtime x=y $OPTIONS"},
		{"none", "# /lib/systemd/system/docker.service\n[Service]\n", ""},
	} {
		if got := mainExecStart(tc.unit); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRPMInstalled(t *testing.T) {
	f := testFacts("@@rpm\ndocker-ce\npackage docker is not installed\ncontainer-selinux\n@@end\n")
	for pkg, want := range map[string]bool{"docker-ce": true, "container-selinux": true, "docker": false, "yum-utils": false} {
		if got := f.RPMInstalled(pkg); got != want {
			t.Errorf("RPMInstalled(%s) = %v, want %v", pkg, got, want)
		}
	}
}

// dmDropIn is docker-machine's 10-machine.conf (libmachine's systemd
// template) as `systemctl cat docker.service` shows it after the unit.
const dmDropIn = "# /lib/systemd/system/docker.service\n[Service]\nType=notify\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS\n\n" +
	"# /etc/systemd/system/docker.service.d/10-machine.conf\n[Service]\nExecStart=\n" +
	"ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --storage-driver overlay2 --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=generic --log-opt=max-size=10m \n" +
	"Environment=\n"

// TestCarriedExecStart (issue 27): the command line shoal's TLS drop-in
// builds on is the one dockerd runs with, another tool's drop-in included,
// without the TCP sockets and TLS flags shoal sets; shoal's own drop-in is
// never read back.
func TestCarriedExecStart(t *testing.T) {
	ours := "\n# " + dropInPath + "\n[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/etc/docker/shoal/ca.pem --tlscert=/etc/docker/shoal/server.pem --tlskey=/etc/docker/shoal/server-key.pem\n"
	for _, tc := range []struct{ name, unit, want string }{
		{"the unit's own", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS\n", "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"},
		{"docker-machine's drop-in", dmDropIn, "/usr/bin/dockerd -H unix:///var/run/docker.sock --storage-driver overlay2 --label provider=generic --log-opt=max-size=10m"},
		{"docker-machine's, then shoal's", dmDropIn + ours, "/usr/bin/dockerd -H unix:///var/run/docker.sock --storage-driver overlay2 --label provider=generic --log-opt=max-size=10m"},
		{"shoal's only", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n" + ours, "/usr/sbin/dockerd -H fd://"},
		{"= forms", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd --host=tcp://0.0.0.0:2375 -H=unix:///run/d.sock --tls=true --tlskey=/k --data-root /srv/d\n", "/usr/bin/dockerd -H=unix:///run/d.sock --data-root /srv/d"},
		{"cleared", "# /lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd\n\n# /etc/systemd/system/docker.service.d/x.conf\n[Service]\nExecStart=\n", ""},
	} {
		if got := carriedExecStart(tc.unit); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestFlagConflicts: a daemon.json key a carried flag sets too is found
// before anything is written (dockerd would not start).
func TestFlagConflicts(t *testing.T) {
	exec := carriedExecStart(dmDropIn)
	if got := flagConflicts(exec, []byte(`{"labels":["a=b"],"storage-driver":"overlay2","log-level":"warn","log-opts":{}}`)); strings.Join(got, ",") != "labels,log-opts,storage-driver" {
		t.Errorf("conflicts %q", got)
	}
	if got := flagConflicts(exec, []byte(`{"log-level":"warn"}`)); len(got) != 0 {
		t.Errorf("conflicts %q, want none", got)
	}
	if got := flagConflicts("/usr/bin/dockerd -H fd:// -D", []byte(`{"hosts":["unix://"],"debug":true}`)); strings.Join(got, ",") != "debug,hosts" {
		t.Errorf("short flags: %q", got)
	}
}

// FuzzCarriedExecStart: whatever the unit says, the carried line never
// holds a TCP socket or a TLS flag of its own, and does not panic.
func FuzzCarriedExecStart(f *testing.F) {
	f.Add(dmDropIn)
	f.Add("# /x\nExecStart=/usr/bin/dockerd -H\n")
	f.Add("ExecStart=dockerd --tlscacert\n")
	f.Fuzz(func(t *testing.T, unit string) {
		got := carriedExecStart(unit)
		words := strings.Fields(got)
		for i := 1; i < len(words); i++ {
			name, val, hasVal := strings.Cut(words[i], "=")
			if (name == "-H" || name == "--host") && !hasVal && i+1 < len(words) {
				val = words[i+1]
			}
			tcp := (name == "-H" || name == "--host") && strings.HasPrefix(val, "tcp://")
			if tcp || name == "--tlsverify" || name == "--tlscacert" || name == "--tlskey" || name == "--tlscert" || name == "--tls" {
				t.Fatalf("carried %q from %q", got, unit)
			}
		}
	})
}

func TestSocketMoves(t *testing.T) {
	for _, tc := range []struct {
		running, next string
		want          bool
	}{
		{"/usr/bin/dockerd -H unix:///var/run/docker.sock --storage-driver overlay2", "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS", true},
		{"/usr/bin/dockerd --host=unix:///var/run/docker.sock", "/usr/bin/dockerd -H=fd://", true},
		{"/usr/bin/dockerd", "/usr/bin/dockerd -H fd://", true}, // no -H: dockerd binds the default path
		{"/usr/sbin/dockerd -H fd://", "/usr/sbin/dockerd -H fd:// --label a=b", false},
		{"/usr/bin/dockerd -H unix:///var/run/docker.sock", "/usr/bin/dockerd -H unix:///var/run/docker.sock --label a=b", false},
		{"/usr/bin/dockerd -H fd:// -H unix:///x.sock", "/usr/bin/dockerd -H fd://", false},
		{"", "/usr/bin/dockerd -H fd://", false}, // not installed yet
	} {
		if got := socketMoves(tc.running, tc.next); got != tc.want {
			t.Errorf("socketMoves(%q, %q) = %v, want %v", tc.running, tc.next, got, tc.want)
		}
	}
}

// TestSocketRestartedWhenItMoves: a host whose dockerd binds the socket's
// path itself (here from a drop-in shoal carried docker-machine's -H
// unix:// into, that drop-in since removed) gets -H fd://: dockerd stops,
// docker.socket restarts (listening on the path the old dockerd unlinked),
// dockerd starts.
func TestSocketRestartedWhenItMoves(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/rocky9.txt")
	h := newFakeHost(t, fix)
	h.files[dropInPath] = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/etc/docker/shoal/ca.pem --tlscert=/etc/docker/shoal/server.pem --tlskey=/etc/docker/shoal/server-key.pem\n"
	if _, err := Provision(context.Background(), h, fix.spec(), h.progress); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(h.log, "\n")
	if !strings.Contains(log, "systemctl stop docker && systemctl restart docker.socket && systemctl start docker") || h.socketRestarts != 1 || !h.active {
		t.Errorf("socket restarts %d, active %v:\n%s", h.socketRestarts, h.active, log)
	}
	if !strings.Contains(h.files[dropInPath], "-H fd://") {
		t.Errorf("drop-in:\n%s", h.files[dropInPath])
	}
	// Once moved, it stays: the next run restarts nothing.
	h.log = nil
	if _, err := Provision(context.Background(), h, fix.spec(), h.progress); err != nil || h.socketRestarts != 1 {
		t.Errorf("second run: %v, socket restarts %d", err, h.socketRestarts)
	}
}
