package main

import (
	"reflect"
	"strings"
	"testing"
)

// What sshfs 3.7 and rsync 3.2 run as their ssh (seen with a fake
// ssh_command / -e), read as OpenSSH reads it.
func TestParseTransportArgs(t *testing.T) {
	cases := []struct {
		argv  []string
		name  string
		words []string
		opts  sshOptions
	}{
		{strings.Fields("-x -a -oClearAllForwardings=yes -2 -s -- m1 sftp"), "m1", []string{"sftp"}, sshOptions{Subsystem: true}},
		{strings.Fields("m1 rsync --server -re.iLsfxCIvu . /tmp/x"), "m1", strings.Fields("rsync --server -re.iLsfxCIvu . /tmp/x"), sshOptions{}},
		{strings.Fields("-p 2222 m1 -t top"), "m1", []string{"top"}, sshOptions{Port: 2222, TTY: 1}},
	}
	for _, c := range cases {
		name, opts, words, err := parseTransportArgs(c.argv)
		if err != nil || name != c.name || !reflect.DeepEqual(words, c.words) || !reflect.DeepEqual(opts, c.opts) {
			t.Errorf("%q: %q %+v %q %v", c.argv, name, opts, words, err)
		}
	}
	for _, bad := range [][]string{nil, {"-x"}, {"../x", "ls"}, {"-J", "j", "m1"}, {"m1", "-X", "ls"}} {
		if _, _, _, err := parseTransportArgs(bad); err == nil {
			t.Errorf("%q: taken", bad)
		}
	}
}

// docker-machine's command lines (commands/scp.go getScpCmd with delta,
// commands/mount.go getMountCmd), with shoal's transport for "ssh ...".
func TestDeltaAndMountCommandLines(t *testing.T) {
	tr := "/usr/bin/machine ssh-transport"
	if got, want := rsyncArgs(tr, "./a", "m1:dir", true, false), []string{"--progress", "-e", tr, "-r", "./a", "m1:dir"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rsync: %q, want %q", got, want)
	}
	if got, want := rsyncArgs(tr, "m1:/etc/hosts", "h", false, true), []string{"-e", tr, "m1:/etc/hosts", "h"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rsync -q: %q, want %q", got, want)
	}
	if got, want := mountArgs(tr, "m1", "/tmp", "/mnt/x", false), []string{"-o", "ssh_command=" + tr, "m1:/tmp", "/mnt/x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sshfs: %q, want %q", got, want)
	}
	if got, want := mountArgs(tr, "m1", "/tmp", "/mnt/x", true), []string{"-u", "/mnt/x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fusermount: %q, want %q", got, want)
	}
	for _, c := range []struct{ src, dir, name, p, local string }{
		{"m1:/tmp", "", "m1", "/tmp", "/tmp"},
		{"/srv/x/", "", "default", "/srv/x/", "/srv/x"},
		{"m1:/tmp", "./here", "m1", "/tmp", "./here"},
	} {
		name, p, local, err := mountSpec(c.src, c.dir)
		if err != nil || name != c.name || p != c.p || local != c.local {
			t.Errorf("mountSpec(%q, %q) = %q %q %q %v", c.src, c.dir, name, p, local, err)
		}
	}
	for _, bad := range []string{"../x:/tmp", "m1:"} {
		if _, _, _, err := mountSpec(bad, ""); err == nil {
			t.Errorf("mountSpec(%q): taken", bad)
		}
	}
}

// Without rsync or sshfs here, the error names the package to install.
func TestMissingToolsNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"scp", "-d", "./a", "m1:/tmp/"}, "install the rsync package"},
		{[]string{"mount", "m1:/tmp", "/mnt/x"}, "install the sshfs package"},
		{[]string{"mount", "-u", "m1:/tmp", "/mnt/x"}, "install the fuse3 package"},
	} {
		code, _, errOut := runMachine(t, nil, c.argv...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, %q; want 1 and %q", c.argv, code, errOut, c.want)
		}
	}
	if code, _, errOut := runMachine(t, nil, "scp", "-d", "a:/x", "b:/y"); code != 2 || !strings.Contains(errOut, "one machine") {
		t.Errorf("scp -d between two machines: %d %q", code, errOut)
	}
}
