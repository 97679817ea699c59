package osfamily

import (
	"os/exec"
	"strings"
	"testing"
)

var (
	centos7   = OS{ID: "centos", VersionID: "7", PrettyName: "CentOS Linux 7 (Core)"}
	stream8   = OS{ID: "centos", VersionID: "8", PrettyName: "CentOS Stream 8"}
	centosL8  = OS{ID: "centos", VersionID: "8", PrettyName: "CentOS Linux 8"}
	stream9   = OS{ID: "centos", VersionID: "9", PrettyName: "CentOS Stream 9"}
	alma8     = OS{ID: "almalinux", IDLike: []string{"rhel", "centos", "fedora"}, VersionID: "8.9", PrettyName: "AlmaLinux 8.9 (Midnight Oncilla)"}
	rockyNine = OS{ID: "rocky", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)"}
	rhel7     = OS{ID: "rhel", VersionID: "7.9", PrettyName: "Red Hat Enterprise Linux Server 7.9 (Maipo)"}
	rhel9     = OS{ID: "rhel", VersionID: "9.4", PrettyName: "Red Hat Enterprise Linux 9.4 (Plow)"}
)

const stockC7 = RepoFileMarker + "/etc/yum.repos.d/CentOS-Base.repo\n" +
	"[base]\nname=CentOS-$releasever - Base\nmirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=os\n#baseurl=http://mirror.centos.org/centos/$releasever/os/$basearch/\ngpgcheck=1\n\n" +
	"[updates]\nmirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=updates\n" +
	"[extras]\nmirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=extras\n" +
	"[centosplus]\nmirrorlist=http://mirrorlist.centos.org/?repo=centosplus\nenabled=0\n" +
	RepoFileMarker + "/etc/yum.repos.d/CentOS-Media.repo\n[c7-media]\nbaseurl=file:///media/CentOS/\n        file:///media/cdrom/\nenabled=0\n" +
	RepoFileMarker + "/etc/yum.repos.d/docker-ce.repo\n[docker-ce-stable]\nbaseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\nenabled=1\n"

func TestParseRepoFiles(t *testing.T) {
	d := ParseRepoFiles(stockC7 + RepoFileMarker + "/etc/yum.repos.d/CentOS-Base.repo.shoal-orig\n")
	if len(d.Files) != 4 || d.Files[3] != "/etc/yum.repos.d/CentOS-Base.repo.shoal-orig" {
		t.Errorf("files: %v", d.Files)
	}
	var got []string
	for _, r := range d.Repos {
		got = append(got, r.ID+":"+map[bool]string{true: "on", false: "off"}[r.Enabled]+":"+strings.Join(r.Hosts(), ","))
	}
	want := "base:on:http://mirrorlist.centos.org updates:on:http://mirrorlist.centos.org extras:on:http://mirrorlist.centos.org " +
		"centosplus:off:http://mirrorlist.centos.org c7-media:off: docker-ce-stable:on:https://download.docker.com"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	if !strings.Contains(d.Text["/etc/yum.repos.d/CentOS-Media.repo"], "[c7-media]") {
		t.Errorf("the text of a file is kept: %q", d.Text)
	}
	if r := ParseReach("http://mirrorlist.centos.org 000\nhttps://vault.centos.org 200\nhttps://x.example 404\n"); r["http://mirrorlist.centos.org"] || !r["https://vault.centos.org"] || !r["https://x.example"] {
		t.Errorf("reach: %v", r)
	}
}

func TestEOL(t *testing.T) {
	for _, tc := range []struct {
		os    OS
		vault string // "" not EOL
	}{
		{centos7, "7.9.2009"}, {stream8, "8-stream"}, {centosL8, "8.5.2111"}, {stream9, ""}, {alma8, ""}, {rhel7, ""},
	} {
		e, ok := EOL(tc.os)
		if ok != (tc.vault != "") || e.VaultDir != tc.vault {
			t.Errorf("%s: got %+v %v, want vault %q", tc.os.PrettyName, e, ok, tc.vault)
		}
	}
}

func TestPlanOSRepos(t *testing.T) {
	dead := map[string]bool{"http://mirrorlist.centos.org": false}
	const mirror = "https://mirrors.aliyun.com/centos-vault/"
	c7 := ParseRepoFiles(stockC7)
	e7, _ := EOL(centos7)
	applied := ParseRepoFiles(RepoFileMarker + MirrorRepoFile + "\n" + e7.MirrorRepoText(mirror) + "\n" +
		RepoFileMarker + "/etc/yum.repos.d/CentOS-Base.repo.shoal-orig\n")
	s8 := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/CentOS-Stream-BaseOS.repo\n[baseos]\nmirrorlist=http://mirrorlist.centos.org/?release=$stream&repo=BaseOS\n" +
		RepoFileMarker + "/etc/yum.repos.d/CentOS-Stream-Extras-common.repo\n[extras-common]\nmirrorlist=http://mirrorlist.centos.org/?repo=extras-common\n")
	epelDead := ParseRepoFiles(stockC7 + RepoFileMarker + "/etc/yum.repos.d/epel.repo\n[epel]\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=epel-7\n")
	rocky := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/rocky.repo\n[baseos]\nmirrorlist=https://mirrors.rockylinux.org/mirrorlist?repo=BaseOS\n")
	empty := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/redhat.repo\n# Managed by (rhsm) subscription-manager\n")
	for _, tc := range []struct {
		name   string
		os     OS
		dir    RepoDir
		reach  map[string]bool
		mirror string
		need   bool
		aside  string // files moved aside, space separated
		write  bool
		note   bool
		errHas string
	}{
		{"c7 dead, no mirror: the remedy", centos7, c7, dead, "", true, "", false, false, "os_mirror = \"https://vault.centos.org\""},
		{"c7 dead, nothing to install: fine", centos7, c7, dead, "", false, "", false, false, ""},
		// Even when the probe could not reach curl: an EOL release's
		// mirrorlist is dead by definition.
		{"c7 EOL, no reach facts", centos7, c7, nil, "", true, "", false, false, "reached its end of life on 2024-06-30"},
		{"c7 mirror: base aside, file written", centos7, c7, dead, mirror, true, "/etc/yum.repos.d/CentOS-Base.repo", true, false, ""},
		{"c7 mirror applied: nothing", centos7, applied, dead, mirror, true, "", false, false, ""},
		{"c7 mirror applied, another mirror: rewritten", centos7, applied, dead, "https://vault.centos.org", true, "", true, false, ""},
		{"c7 backup already there", centos7, ParseRepoFiles(stockC7 + RepoFileMarker + "/etc/yum.repos.d/CentOS-Base.repo.shoal-orig\n"), dead, mirror, true, "", false, false, "both exist"},
		{"c7 mirror, epel dead too: named", centos7, epelDead, map[string]bool{"https://mirrors.fedoraproject.org": false}, mirror, true, "", false, false, "epel (https://mirrors.fedoraproject.org"},
		{"stream 8 mirror: extras-common aside too", stream8, s8, dead, mirror, true, "/etc/yum.repos.d/CentOS-Stream-BaseOS.repo /etc/yum.repos.d/CentOS-Stream-Extras-common.repo", true, false, ""},
		{"rocky 9 with a mirror: a note, nothing done", rockyNine, rocky, nil, mirror, true, "", false, true, ""},
		{"rocky 9 repos dead: error without the EOL story", rockyNine, rocky, map[string]bool{"https://mirrors.rockylinux.org": false}, "", true, "", false, false, "fix or disable them"},
		{"rhel 9 unregistered", rhel9, empty, nil, "", true, "", false, false, "has no enabled repositories"},
		{"rhel 9 unregistered, nothing to install", rhel9, empty, nil, "", false, "", false, false, ""},
		{"bad mirror", centos7, c7, dead, "https://x.example/a b", true, "", false, false, "not a plain http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanOSRepos(tc.os, tc.dir, tc.reach, tc.mirror, tc.need)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want an error with %q, got %v (%+v)", tc.errHas, err, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.MoveAside, " ") != tc.aside || (p.Write != "") != tc.write || (p.Note != "") != tc.note {
				t.Errorf("got aside %v write %v note %q", p.MoveAside, p.Write != "", p.Note)
			}
		})
	}
	if txt := e7.MirrorRepoText(mirror); !strings.Contains(txt, "baseurl=https://mirrors.aliyun.com/centos-vault/7.9.2009/extras/$basearch/") {
		t.Errorf("the vault layout: %s", txt)
	}
	e8, _ := EOL(stream8)
	if txt := e8.MirrorRepoText("https://vault.centos.org"); !strings.Contains(txt, "baseurl=https://vault.centos.org/8-stream/AppStream/$basearch/os/") {
		t.Errorf("the 8-stream vault layout: %s", txt)
	}
}

func TestDockerRepoDir(t *testing.T) {
	for _, tc := range []struct {
		os      OS
		major   int
		version string
		want    string
	}{
		{centos7, 7, "", "centos"},
		{rhel7, 7, "", "centos"}, // Docker never built linux/rhel for 7 on x86_64
		{alma8, 8, "", "rhel"},   // centos/8 stopped at 26.1
		{alma8, 8, "27", "rhel"},
		{alma8, 8, "26.1", "centos"},
		{alma8, 8, "24.0.9", "centos"},
		{stream8, 8, "", "rhel"},
		{rockyNine, 9, "", "centos"},
		{rhel9, 9, "", "rhel"},
	} {
		if got := DockerRepoDir(tc.os, tc.major, tc.version); got != tc.want {
			t.Errorf("%s pin %q: got %s, want %s", tc.os.PrettyName, tc.version, got, tc.want)
		}
	}
	if _, err := (RHEL{7}).InstallDocker(centos7, "repo", Install{Version: "27.3"}, nil); err == nil || !strings.Contains(err.Error(), "pin 26.1 or older") {
		t.Errorf("a pin of 27 on 7: %v", err)
	}
}

func TestVersions(t *testing.T) {
	out := "Available Packages\ndocker-ce.x86_64  3:26.1.3-1.el8  docker-ce-stable\ndocker-ce.x86_64  3:26.1.10-1.el8  docker-ce-stable\n" +
		"docker-ce.x86_64  18.09.1-3.el7  docker-ce-stable\ndocker-ce.x86_64  3:26.1.3-1.el8  docker-ce-stable\nLast metadata expiration check\n"
	if got := strings.Join(ParseVersions(out), " "); got != "26.1.10 26.1.3 18.09.1" {
		t.Errorf("versions: %s", got)
	}
	offered := []string{"26.1.3", "26.1.2", "25.0.5", "24.0.9"}
	for _, tc := range []struct{ pin, repo, errHas string }{
		{"26.1", "r", ""}, {"26.1.2", "r", ""}, {"24", "r", ""},
		{"26.1.1", "r", "offers 26.1.3, 26.1.2, 25.0.5, 24.0.9."},
		{"2", "r", "not in r"}, // 2 is not a prefix of 24.0.9
		{"27", "https://download.docker.com/linux/centos/8", "Docker stopped building for CentOS 7 and 8 after 26.1"},
	} {
		err := CheckPin(offered, tc.pin, tc.repo)
		if (tc.errHas == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("pin %s: got %v, want %q", tc.pin, err, tc.errHas)
		}
	}
	if err := CheckPin(offered, "27", "https://download.docker.com/linux/centos/9"); err == nil || strings.Contains(err.Error(), "stopped") {
		t.Errorf("EL9's repository is still built: %v", err)
	}
	madison := " docker-ce | 5:27.3.1-1~ubuntu.22.04~jammy | https://download.docker.com/linux/ubuntu jammy/stable amd64 Packages\n" +
		" docker-ce | 5:24.0.9-1~ubuntu.22.04~jammy | https://download.docker.com/linux/ubuntu jammy/stable amd64 Packages\n" +
		" docker-ce | 5:20.10.24~3-0~ubuntu-jammy | https://download.docker.com/linux/ubuntu jammy/stable amd64 Packages\n"
	if got := strings.Join(ParseMadison(madison), " "); got != "27.3.1 24.0.9 20.10.24" {
		t.Errorf("madison: %s", got)
	}
	if err := CheckPin(nil, "27", "r"); err == nil || !strings.Contains(err.Error(), "offers nothing") {
		t.Errorf("empty: %v", err)
	}
}

func TestConflicts(t *testing.T) {
	inst := func(pkgs ...string) func(string) bool {
		return func(p string) bool {
			for _, x := range pkgs {
				if x == p {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name      string
		major     int
		installed func(string) bool
		replace   bool
		want      string
		errHas    string
	}{
		{"none", 9, inst("dnf-plugins-core"), false, "", ""},
		{"podman refused", 9, inst("podman", "runc", "buildah"), false, "", "podman, buildah, runc installed"},
		{"podman replaced", 9, inst("podman", "runc", "buildah"), true, "dnf remove -y -q podman buildah runc", ""},
		{"el7 distro docker refused", 7, inst("docker", "docker-client", "docker-common"), false, "", "replace_conflicting = true"},
		{"el7 distro docker replaced", 7, inst("docker", "docker-client", "docker-common"), true, "yum remove -y -q docker docker-client docker-common", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RHEL{tc.major}.ResolveConflicts(rockyNine, Conflicts(tc.installed), tc.replace)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want %q, got %v", tc.errHas, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestRHEL7Extras(t *testing.T) {
	off := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/redhat-rhui.repo\n[rhui-rhel-7-server-rhui-rpms]\nenabled=1\n[rhui-rhel-7-server-rhui-extras-rpms]\nenabled=0\n").Repos
	on := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/redhat.repo\n[rhel-7-server-extras-rpms]\nenabled = 1\n").Repos
	none := ParseRepoFiles(RepoFileMarker + "/etc/yum.repos.d/redhat.repo\n[rhel-7-server-rpms]\nenabled=1\n").Repos
	for _, tc := range []struct {
		name   string
		os     OS
		repos  []Repo
		sm     bool
		want   string
		errHas string
	}{
		{"centos: not its business", centos7, none, false, "", ""},
		{"disabled: enabled by id", rhel7, off, false, "yum-config-manager --enable rhui-rhel-7-server-rhui-extras-rpms", ""},
		{"enabled: nothing", rhel7, on, true, "", ""},
		{"missing: subscription-manager", rhel7, none, true, "subscription-manager repos --enable=rhel-7-server-extras-rpms", ""},
		{"missing, no subscription-manager", rhel7, none, false, "", "extras repository"},
		{"rhel 9: not this", rhel9, none, true, "", ""},
	} {
		got, err := RHEL7Extras(tc.os, tc.repos, tc.sm)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: want %q, got %v", tc.name, tc.errHas, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	cmds, err := (RHEL{7}).InstallDocker(rhel7, "repo", Install{}, func(string) bool { return true })
	if err != nil || !strings.Contains(strings.Join(cmds, "\n"), `sed -i 's/\$releasever/7/g' /etc/yum.repos.d/docker-ce.repo`) {
		t.Errorf("RHEL 7 gets its release written into docker-ce.repo: %q %v", cmds, err)
	}
}

func TestParseLockHolders(t *testing.T) {
	if got := ParseLockHolders("unattended-upgr (pid 812)\n\n  apt-get (pid 900)  \n"); strings.Join(got, "|") != "unattended-upgr (pid 812)|apt-get (pid 900)" {
		t.Errorf("got %q", got)
	}
	if got := ParseLockHolders(""); got != nil {
		t.Errorf("free: %q", got)
	}
}

// The lock commands are valid shell that succeeds here, lock or no lock.
func TestLockHoldersRun(t *testing.T) {
	for _, f := range []Family{Debian{}, RHEL{Major: 9}} {
		out, err := exec.Command("sh", "-c", f.LockHolders()).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", f.Name(), err, out)
		}
		for _, h := range ParseLockHolders(string(out)) {
			if !strings.Contains(h, "(pid ") {
				t.Errorf("%s: not a holder: %q", f.Name(), h)
			}
		}
	}
}

func TestIsLockError(t *testing.T) {
	for out, want := range map[string]bool{
		"E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 845 (unattended-upgr)":          true,
		"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?": true,
		"E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)":             true,
		"error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Resource temporarily unavailable)":       true,
		"E: Unable to locate package docker-ce": false,
		"No package docker-ce-27.9 available.":  false,
		"":                                      false,
	} {
		if got := IsLockError(out); got != want {
			t.Errorf("%q: got %v", out, got)
		}
	}
}
