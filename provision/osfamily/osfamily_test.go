package osfamily

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		osRelease string
		family    string // "" means unsupported
		major     int
		errHas    string
	}{
		{"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n", "debian", 0, ""},
		{"ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n", "debian", 0, ""},
		{"ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", "debian", 0, ""},
		{"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\n", "rhel", 7, ""},
		{"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"8\"\nNAME=\"CentOS Stream\"\n", "rhel", 8, ""},
		{"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\n", "rhel", 9, ""},
		{"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n", "rhel", 9, ""},
		{"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n", "rhel", 8, ""},
		{"ID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n", "rhel", 8, ""},
		{"ID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n", "rhel", 9, ""},
		{"ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n", "rhel", 9, ""},
		{"ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"7.9\"\n", "rhel", 7, ""},
		{"ID=\"centos\"\nVERSION_ID=\"6\"\nPRETTY_NAME=\"CentOS 6\"\n", "", 0, "too old"},
		{"ID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n", "", 0, "Amazon Linux 2 is not supported"},
		{"ID=\"rhel\"\nVERSION_ID=\"10.0\"\n", "", 0, "not supported yet"},
		{"ID=fedora\nVERSION_ID=40\nPRETTY_NAME=\"Fedora Linux 40\"\n", "", 0, "Fedora Linux 40 is not supported: shoal provisions Debian, Ubuntu, CentOS 7"},
		{"ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n", "", 0, "Alpine Linux v3.19 is not supported"},
		{"", "", 0, "an unknown OS (no /etc/os-release) is not supported"},
	} {
		fam, err := Detect(ParseOSRelease(tc.osRelease))
		if tc.family == "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%q: want an error with %q, got %v %v", tc.osRelease, tc.errHas, fam, err)
			}
			continue
		}
		if err != nil || fam.Name() != tc.family {
			t.Errorf("%q: got %v %v, want %s", tc.osRelease, fam, err, tc.family)
			continue
		}
		if r, ok := fam.(RHEL); ok && r.Major != tc.major {
			t.Errorf("%q: major %d, want %d", tc.osRelease, r.Major, tc.major)
		}
	}
}

func TestInstallDocker(t *testing.T) {
	centos7 := OS{ID: "centos", VersionID: "7", PrettyName: "CentOS Linux 7 (Core)"}
	rocky9 := OS{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}, VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)"}
	rhel8 := OS{ID: "rhel", VersionID: "8.10", PrettyName: "Red Hat Enterprise Linux 8.10 (Ootpa)"}
	ubuntu := OS{ID: "ubuntu", IDLike: []string{"debian"}, VersionCodename: "jammy", UbuntuCodename: "jammy"}
	mint := OS{ID: "linuxmint", IDLike: []string{"ubuntu", "debian"}, VersionCodename: "virginia", UbuntuCodename: "jammy"}
	debian := OS{ID: "debian", VersionCodename: "bookworm"}
	all := func(string) bool { return true }
	for _, tc := range []struct {
		name      string
		fam       Family
		os        OS
		source    string
		in        Install
		installed func(string) bool
		want      []string
		errHas    string
	}{
		{"centos7 repo, mirror, pinned", RHEL{7}, centos7, "repo", Install{Version: "24.0.9", RepoURL: "https://mirrors.aliyun.com/docker-ce/"}, nil, []string{
			"yum install -y -q yum-utils",
			"yum-config-manager --add-repo https://mirrors.aliyun.com/docker-ce/linux/centos/docker-ce.repo",
			"sed -i 's+https://download.docker.com+https://mirrors.aliyun.com/docker-ce+' /etc/yum.repos.d/docker-ce.repo",
			"yum install -y -q docker-ce-24.0.9 docker-ce-cli-24.0.9 containerd.io container-selinux",
		}, ""},
		{"centos7 repo, default, yum-utils there", RHEL{7}, centos7, "repo", Install{}, all, []string{
			"yum-config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo",
			"yum install -y -q docker-ce docker-ce-cli containerd.io container-selinux",
		}, ""},
		{"centos7 distro", RHEL{7}, centos7, "distro", Install{}, nil, []string{"yum install -y -q docker"}, ""},
		{"centos7 distro pinned", RHEL{7}, centos7, "distro", Install{Version: "1.13.1"}, nil, []string{"yum install -y -q docker-1.13.1"}, ""},
		{"rocky9 repo, prefix pin", RHEL{9}, rocky9, "repo", Install{Version: "26.1"}, all, []string{
			"dnf config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo",
			"dnf install -y -q 'docker-ce-26.1.*' 'docker-ce-cli-26.1.*' containerd.io container-selinux",
		}, ""},
		{"rhel8 uses the rhel repository", RHEL{8}, rhel8, "repo", Install{}, nil, []string{
			"dnf install -y -q dnf-plugins-core",
			"dnf config-manager --add-repo https://download.docker.com/linux/rhel/docker-ce.repo",
			"dnf install -y -q docker-ce docker-ce-cli containerd.io container-selinux",
		}, ""},
		{"rocky9 distro: none", RHEL{9}, rocky9, "distro", Install{}, nil, nil, "Rocky Linux 9.3 (Blue Onyx) has no Docker Engine package of its own (RHEL 8 and later ship podman"},
		{"bad version", RHEL{9}, rocky9, "repo", Install{Version: "26; reboot"}, nil, nil, "is not a version"},
		{"bad repo url", RHEL{9}, rocky9, "repo", Install{RepoURL: "https://x.example/a+b"}, nil, nil, "not a plain http(s) URL"},
		{"bad repo url scheme", Debian{}, debian, "repo", Install{RepoURL: "ftp://x.example"}, nil, nil, "not a plain http(s) URL"},
		{"ubuntu repo mirror pinned", Debian{}, ubuntu, "repo", Install{Version: "24.0.9", RepoURL: "https://mirrors.aliyun.com/docker-ce"}, nil, []string{
			"export DEBIAN_FRONTEND=noninteractive; command -v curl >/dev/null || { apt-get update -q && apt-get install -y -q curl ca-certificates; }",
			"install -m 0755 -d /etc/apt/keyrings",
			"curl -fsSL https://mirrors.aliyun.com/docker-ce/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc && chmod a+r /etc/apt/keyrings/docker.asc",
			`echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] "'https://mirrors.aliyun.com/docker-ce/linux/ubuntu jammy stable' > /etc/apt/sources.list.d/docker.list`,
			"export DEBIAN_FRONTEND=noninteractive; apt-get update -q",
			"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q 'docker-ce=5:24.0.9*' 'docker-ce-cli=5:24.0.9*' containerd.io",
		}, ""},
		{"ubuntu distro", Debian{}, ubuntu, "distro", Install{}, nil, []string{
			"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q docker.io || { apt-get update -q && apt-get install -y -q docker.io; }",
		}, ""},
		{"debian distro pinned", Debian{}, debian, "distro", Install{Version: "20.10"}, nil, []string{
			"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q 'docker.io=20.10*' || { apt-get update -q && apt-get install -y -q 'docker.io=20.10*'; }",
		}, ""},
		{"debian distro from an apt repository, pinned", Debian{}, debian, "distro", Install{Version: "20.10.99", RepoURL: "http://172.20.0.1:8080/debian/"}, nil, []string{
			"echo 'deb http://172.20.0.1:8080/debian bookworm main' > /etc/apt/sources.list.d/shoal-docker.list",
			"export DEBIAN_FRONTEND=noninteractive; apt-get update -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/shoal-docker.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0",
			"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q 'docker.io=20.10.99*'",
		}, ""},
		{"debian distro repository needs a codename", Debian{}, OS{ID: "debian", PrettyName: "Debian sid"}, "distro", Install{RepoURL: "http://mirror.example/debian"}, nil, nil, "no usable VERSION_CODENAME"},
		{"debian distro repository url checked", Debian{}, debian, "distro", Install{RepoURL: "http://x.example/a b"}, nil, nil, "not a plain http(s) URL"},
		{"debian repo path", Debian{}, debian, "repo", Install{}, nil, nil, ""},
		{"mint uses ubuntu's codename", Debian{}, mint, "repo", Install{}, nil, nil, ""},
		{"unknown source", RHEL{9}, rocky9, "tarball", Install{}, nil, nil, "unknown install source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fam.InstallDocker(tc.os, tc.source, tc.in, tc.installed)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want an error with %q, got %v %q", tc.errHas, err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tc.name {
			case "debian repo path":
				if !strings.Contains(strings.Join(got, "\n"), "https://download.docker.com/linux/debian bookworm stable") {
					t.Errorf("want the debian repository for bookworm:\n%s", strings.Join(got, "\n"))
				}
				return
			case "mint uses ubuntu's codename":
				if !strings.Contains(strings.Join(got, "\n"), "/linux/ubuntu jammy stable") {
					t.Errorf("want ubuntu jammy:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestInstallPackages(t *testing.T) {
	if got := (RHEL{Major: 7}).InstallPackages("container-selinux"); got != "yum install -y -q container-selinux" {
		t.Errorf("el7: %q", got)
	}
	if got := (RHEL{Major: 9}).InstallPackages("container-selinux"); got != "dnf install -y -q container-selinux" {
		t.Errorf("el9: %q", got)
	}
	if !(RHEL{}).SELinux() || (Debian{}).SELinux() {
		t.Error("SELinux: RHEL yes, Debian no")
	}
}
