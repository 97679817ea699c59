package provision

import (
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

// TestParseFactsPTY: through a pty every line may end in CRLF; the facts
// read the same.
func TestParseFactsPTY(t *testing.T) {
	plain := "@@hostname\nnode1\n@@hosts\n127.0.0.1 localhost\n@@end\n"
	pty := "@@hostname\r\nnode1\r\n@@hosts\r\n127.0.0.1 localhost\r\n@@end\r\n"
	a, b := parseFacts(plain), parseFacts(pty)
	for _, s := range []string{"hostname", "hosts"} {
		if a.sections[s] != b.sections[s] {
			t.Errorf("%s: %q through a pty, %q without", s, b.sections[s], a.sections[s])
		}
	}
}

func TestRPMInstalled(t *testing.T) {
	f := parseFacts("@@rpm\ndocker-ce\npackage docker is not installed\ncontainer-selinux\n@@end\n")
	for pkg, want := range map[string]bool{"docker-ce": true, "container-selinux": true, "docker": false, "yum-utils": false} {
		if got := f.RPMInstalled(pkg); got != want {
			t.Errorf("RPMInstalled(%s) = %v, want %v", pkg, got, want)
		}
	}
}
