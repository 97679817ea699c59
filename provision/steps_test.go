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

func TestRPMInstalled(t *testing.T) {
	f := testFacts("@@rpm\ndocker-ce\npackage docker is not installed\ncontainer-selinux\n@@end\n")
	for pkg, want := range map[string]bool{"docker-ce": true, "container-selinux": true, "docker": false, "yum-utils": false} {
		if got := f.RPMInstalled(pkg); got != want {
			t.Errorf("RPMInstalled(%s) = %v, want %v", pkg, got, want)
		}
	}
}
