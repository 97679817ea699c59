package osfamily

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

// RHEL covers RHEL and its rebuilds: CentOS 7 (yum), CentOS Stream, Rocky
// Linux, AlmaLinux and RHEL 8/9 (dnf). Docker comes from the docker-ce
// repository or a mirror of it; only the 7 releases have a distro package.
type RHEL struct {
	// Major is the release (7, 8 or 9), as Detect found it.
	Major int
}

func (RHEL) Name() string { return "rhel" }

// SELinux is true: the family ships with SELinux enforcing.
func (RHEL) SELinux() bool { return true }

// DockerRepoFile is where `yum-config-manager --add-repo` and
// `dnf config-manager --add-repo` put docker-ce.repo.
const DockerRepoFile = "/etc/yum.repos.d/docker-ce.repo"

// rhelMajor is the major release of a RHEL-family OS (7, 8 or 9).
func rhelMajor(os OS) (int, error) {
	v, _, _ := strings.Cut(os.VersionID, ".")
	major, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("/etc/os-release has no usable VERSION_ID (%q)", os.VersionID)
	case major < 7:
		return 0, fmt.Errorf("release %s is too old (Swarm mode needs Docker 1.12 or later, built for 7 and later)", os.VersionID)
	case major > 9:
		return 0, fmt.Errorf("release %s is not supported yet: shoal knows the RHEL family 7 to 9", os.VersionID)
	}
	return major, nil
}

// packager is yum on 7, dnf from 8 on.
func packager(major int) string {
	if major >= 8 {
		return "dnf"
	}
	return "yum"
}

// InstallPackages installs from the repositories the host has.
func (r RHEL) InstallPackages(pkgs ...string) string {
	// A zero RHEL (not from Detect) still gets a working command: 8 and 9
	// alias yum to dnf.
	return installCmd(packager(r.Major), pkgs)
}

// LockHolders names who holds rpm's database lock, or runs yum or dnf
// (their pid files: yum waits on its own without bound, dnf too).
func (RHEL) LockHolders() string {
	return rhelLockCmd
}

func installCmd(pm string, pkgs []string) string {
	return shell.Word(pm) + " install -y -q " + shell.Words(pkgs...)
}

// pin appends the wanted version to a package name: docker-ce-24.0.9, or a
// glob for a prefix such as 24.0 (docker-ce-24.0.*) so that 24.0.10 is not
// taken for 24.0.1.
func pin(pkg, version string) string {
	if version == "" {
		return pkg
	}
	if strings.Count(version, ".") < 2 {
		return pkg + "-" + version + ".*"
	}
	return pkg + "-" + version
}

func (RHEL) InstallDocker(os OS, source string, in Install, installed func(string) bool) ([]string, error) {
	major, err := rhelMajor(os)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(in.Version); err != nil {
		return nil, err
	}
	if installed == nil {
		installed = func(string) bool { return false }
	}
	r := rhelInstall{os: os, major: major, pm: packager(major), name: os.PrettyName, in: in}
	r.name = cmp.Or(r.name, os.ID+" "+os.VersionID)
	switch source {
	case "distro":
		return r.distro()
	case "repo":
		return r.repo(installed)
	}
	return nil, fmt.Errorf("unknown install source %q", source)
}

// rhelInstall is what RHEL's install commands depend on: the release, its
// package manager (yum or dnf), its name for errors and the install asked.
type rhelInstall struct {
	os    OS
	major int
	pm    string
	name  string
	in    Install
}

// distro installs the release's own docker package: CentOS/RHEL 7 extras
// have Docker 1.13.1, old but with Swarm mode; later releases have none.
func (r rhelInstall) distro() ([]string, error) {
	if r.major >= 8 {
		return nil, fmt.Errorf("%s has no Docker Engine package of its own (RHEL 8 and later ship podman, which has no Swarm mode): "+
			"use --engine-install repo for docker-ce, with --engine-repo-url for a mirror if %s is out of reach", r.name, DefaultRepoURL)
	}
	return []string{installCmd(r.pm, []string{pin("docker", r.in.Version)})}, nil
}

// repo adds Docker's repository (from a mirror, if asked) and installs
// docker-ce from it.
func (r rhelInstall) repo(installed func(string) bool) ([]string, error) {
	root, err := repoRoot(r.in)
	if err != nil {
		return nil, err
	}
	var cmds []string
	// The --add-repo subcommand lives in yum-utils (7) or
	// dnf-plugins-core (8, 9); minimal images may lack either.
	tools := map[string]string{"yum": "yum-utils", "dnf": "dnf-plugins-core"}[r.pm]
	if !installed(tools) {
		cmds = append(cmds, installCmd(r.pm, []string{tools}))
	}
	add := "yum-config-manager --add-repo "
	if r.pm == "dnf" {
		add = "dnf config-manager --add-repo "
	}
	// --add-repo overwrites the file, so a re-run with another mirror
	// starts again from what that mirror serves.
	dir := DockerRepoDir(r.os, r.major, r.in.Version)
	if r.major == 7 && r.in.Version != "" && pinMajor(r.in.Version) > lastFrozenMajor {
		return nil, fmt.Errorf("%s: docker-ce %s was never built for release 7 (Docker stopped at %d.1, docker-ce-packaging removed CentOS 7 for v27): pin %d.1 or older, or use an EL9 host",
			r.name, r.in.Version, lastFrozenMajor, lastFrozenMajor)
	}
	cmds = append(cmds, add+shell.Word(root+"/linux/"+dir+"/docker-ce.repo"))
	cmds = append(cmds, r.repoFileFixes(root)...)
	// container-selinux comes from the OS's own repositories (extras on
	// 7, AppStream on 8/9); naming it makes a missing one an error here
	// rather than a dockerd that SELinux stops later.
	cmds = append(cmds, installCmd(r.pm, []string{pin("docker-ce", r.in.Version), pin("docker-ce-cli", r.in.Version), "containerd.io", "container-selinux"}))
	return cmds, nil
}

// repoFileFixes are the edits docker-ce.repo needs here: the mirror's
// address, RHEL 7's release.
func (r rhelInstall) repoFileFixes(root string) []string {
	var cmds []string
	if root != DefaultRepoURL {
		// docker-ce.repo names download.docker.com whatever server it
		// came from: point its baseurl and gpgkey at the mirror, as the
		// mirrors' own instructions do.
		cmds = append(cmds, "sed -i "+shell.Quote("s+"+DefaultRepoURL+"+"+root+"+")+" "+DockerRepoFile)
	}
	if r.os.ID == "rhel" && r.major == 7 {
		// RHEL 7's $releasever is 7Server, and linux/centos/7Server
		// does not exist: the repo file names the release itself.
		cmds = append(cmds, `sed -i 's/\$releasever/7/g' `+DockerRepoFile)
	}
	return cmds
}
