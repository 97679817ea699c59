// Package osfamily knows how each family of Linux distributions installs
// Docker and runs its services: the commands differ, the steps do not.
package osfamily

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/validate"
)

// OS is what /etc/os-release says.
type OS struct {
	ID              string // debian, ubuntu, centos, rocky, almalinux, rhel
	IDLike          []string
	VersionID       string
	VersionCodename string
	// UbuntuCodename is set by Ubuntu and its derivatives (Linux Mint's
	// VERSION_CODENAME is its own, the docker-ce repo knows Ubuntu's).
	UbuntuCodename string
	PrettyName     string
}

// ParseOSRelease reads the KEY=value lines of /etc/os-release (LF or CRLF,
// lines of any length).
func ParseOSRelease(text string) OS {
	kv := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		kv[k] = strings.Trim(v, `"'`)
	}
	return OS{
		ID:              strings.ToLower(kv["ID"]),
		IDLike:          strings.Fields(strings.ToLower(kv["ID_LIKE"])),
		VersionID:       kv["VERSION_ID"],
		VersionCodename: kv["VERSION_CODENAME"],
		UbuntuCodename:  kv["UBUNTU_CODENAME"],
		PrettyName:      kv["PRETTY_NAME"],
	}
}

// Install says how Docker should get onto the host.
type Install struct {
	// Mode is auto (""), repo, distro or skip.
	Mode validate.InstallMode
	// Version pins the engine version (e.g. 24.0.9); empty means the newest.
	Version string
	// RepoURL is the docker-ce repository root (https://download.docker.com
	// or a mirror such as https://mirrors.aliyun.com/docker-ce).
	RepoURL string
	// OSMirror is a CentOS vault (or a mirror of it) that the base,
	// updates and extras repositories of an end-of-life CentOS release are
	// pointed at.
	OSMirror string
	// ReplaceConflicting allows removing podman, buildah, runc or the
	// distro's docker when they stop docker-ce from installing.
	ReplaceConflicting bool
}

// DefaultRepoURL is Docker's own repository.
const DefaultRepoURL = "https://download.docker.com"

// Family is one family of distributions.
type Family interface {
	Name() string
	// InstallDocker returns the commands, run as root in order, that install
	// Docker from the given source ("repo" or "distro"); the last one
	// installs the packages. installed tells
	// whether a package is on the host already (from the facts probe), so
	// that a first run sends no command it does not need.
	InstallDocker(os OS, source string, in Install, installed func(pkg string) bool) ([]string, error)
	// InstallPackages returns the command that installs pkgs from the
	// repositories the host already has.
	InstallPackages(pkgs ...string) string
	// SELinux tells whether the family runs SELinux (enforcing by default):
	// Docker then needs container-selinux and selinux-enabled.
	SELinux() bool
	// LockHolders is a read-only command that names the processes holding
	// the package manager's lock, one a line, and prints nothing when it
	// is free: provisioning waits for it instead of failing (a fresh
	// Ubuntu or Debian cloud VM runs unattended-upgrades at first boot).
	LockHolders() string
}

// Detect picks the family of os, or says clearly that it is not supported.
func Detect(os OS) (Family, error) {
	name := os.PrettyName
	if name == "" {
		name = strings.TrimSpace(os.ID + " " + os.VersionID)
	}
	name = cmp.Or(name, "an unknown OS (no /etc/os-release)")
	ids := append([]string{os.ID}, os.IDLike...)
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return Debian{}, nil
		case "rhel", "centos", "rocky", "almalinux":
			major, err := rhelMajor(os)
			if err != nil {
				return nil, fmt.Errorf("%s is not supported: %w", name, err)
			}
			return RHEL{Major: major}, nil
		}
	}
	return nil, fmt.Errorf("%s is not supported: shoal provisions %s", name, Supported)
}

// Supported names the distributions shoal provisions, for error messages.
const Supported = "Debian, Ubuntu, CentOS 7, CentOS Stream 8/9, Rocky Linux 8/9, AlmaLinux 8/9 and RHEL 7/8/9 hosts"

// repoRoot is the docker-ce repository root without a trailing slash. It
// goes into shell commands and a sed expression, so it must be a plain URL.
func repoRoot(in Install) (string, error) {
	root := strings.TrimRight(in.RepoURL, "/")
	if root == "" {
		return DefaultRepoURL, nil
	}
	if validate.RepoURL(root) != nil {
		return "", fmt.Errorf("--engine-repo-url %q is not a plain http(s) URL (like https://mirrors.aliyun.com/docker-ce)", in.RepoURL)
	}
	return root, nil
}

// checkVersion refuses an --engine-version that is not a version: it goes
// into package names on the host's command line.
func checkVersion(v string) error {
	if validate.EngineVersion(v) != nil {
		return fmt.Errorf("--engine-version %q is not a version (like 24.0.9 or 24.0)", v)
	}
	return nil
}

// The LockHolders commands print "COMMAND (pid N)" for each process that
// holds one of the package manager's lock files, nothing when none does:
// lslocks sees POSIX locks (apt, dpkg, rpm) and flock ones alike.
const (
	debianLockCmd = `if command -v lslocks >/dev/null; then lslocks -n -r -o COMMAND,PID,PATH | awk '$3 == "/var/lib/dpkg/lock-frontend" || $3 == "/var/lib/dpkg/lock" || $3 == "/var/lib/apt/lists/lock" || $3 == "/var/cache/apt/archives/lock" { print $1 " (pid " $2 ")" }' | sort -u; fi`
	// yum and dnf keep pid files, and wait on them without bound.
	rhelLockCmd = `for f in /var/run/yum.pid /var/cache/dnf/rpmdb_lock.pid /var/cache/dnf/metadata_lock.pid /var/cache/dnf/download_lock.pid; do ` +
		`[ -s "$f" ] && p=$(cat "$f") && [ -n "$p" ] && [ -d "/proc/$p" ] && echo "$(cat "/proc/$p/comm" 2>/dev/null) (pid $p)"; done; ` +
		`if command -v lslocks >/dev/null; then lslocks -n -r -o COMMAND,PID,PATH | awk '$3 == "/var/lib/rpm/.rpm.lock" { print $1 " (pid " $2 ")" }' | sort -u; fi`
)

// LockProbe names who holds the package lock on a host of any family, for
// the facts probe (dpkg's where there is dpkg, rpm's, yum's and dnf's
// otherwise).
const LockProbe = "if command -v dpkg >/dev/null; then " + debianLockCmd + "; else " + rhelLockCmd + "; fi"

// ParseLockHolders reads what a family's LockHolders command printed.
func ParseLockHolders(out string) []string {
	var h []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			h = append(h, l)
		}
	}
	return h
}

// IsLockError tells whether a package command failed because another
// process took the package manager's lock (between shoal's look at the
// lock and the command): apt and dpkg say so and stop; rpm too.
func IsLockError(output string) bool {
	for _, s := range []string{
		"Could not get lock /var/lib/dpkg/", "Could not get lock /var/lib/apt/", "Could not get lock /var/cache/apt/",
		"Unable to acquire the dpkg frontend lock", "Unable to lock the administration directory",
		"can't create transaction lock on /var/lib/rpm/",
	} {
		if strings.Contains(output, s) {
			return true
		}
	}
	return false
}
