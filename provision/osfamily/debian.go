package osfamily

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Debian covers Debian and Ubuntu: apt, docker.io or docker-ce.
type Debian struct{}

func (Debian) Name() string { return "debian" }

const aptEnv = "export DEBIAN_FRONTEND=noninteractive; "

// SELinux is false: Debian and Ubuntu use AppArmor.
func (Debian) SELinux() bool { return false }

// InstallPackages installs from the package lists the host has, and
// updates them only when that fails (a fresh host has none).
func (Debian) InstallPackages(pkgs ...string) string {
	list := shell.Words(pkgs...)
	return aptEnv + fmt.Sprintf("apt-get install -y -q %[1]s || { apt-get update -q && apt-get install -y -q %[1]s; }", list)
}

// LockHolders names who holds dpkg's or apt's locks.
func (Debian) LockHolders() string {
	return debianLockCmd
}

func (d Debian) InstallDocker(os OS, source string, in Install, _ func(string) bool) ([]string, error) {
	if err := checkVersion(in.Version); err != nil {
		return nil, err
	}
	switch source {
	case "distro":
		return d.distroInstall(os, in)
	case "repo":
		return dockerRepoInstall(os, in)
	}
	return nil, fmt.Errorf("unknown install source %q", source)
}

// distroInstall installs the distribution's docker.io, from repo_url when
// given.
func (d Debian) distroInstall(os OS, in Install) ([]string, error) {
	pkg := "docker.io"
	if in.Version != "" {
		pkg += "=" + in.Version + "*"
	}
	if in.RepoURL != "" {
		return d.fromAptRepo(os, pkg, in)
	}
	// Try the package lists the host has first: an offline host with a
	// warm cache still installs, and an update costs seconds otherwise.
	return []string{d.InstallPackages(pkg)}, nil
}

// dockerRepoInstall adds Docker's apt repository (or a mirror of it) and
// installs docker-ce from it.
func dockerRepoInstall(os OS, in Install) ([]string, error) {
	repo, err := repoRoot(in)
	if err != nil {
		return nil, err
	}
	distro, codename, err := dockerAptSuite(os)
	if err != nil {
		return nil, err
	}
	pkgs := "docker-ce docker-ce-cli containerd.io"
	if in.Version != "" {
		// docker-ce versions look like 5:24.0.9-1~debian.12~bookworm;
		// quoted so that the shell leaves the * to apt.
		pkgs = fmt.Sprintf("%s %s containerd.io", shell.Word("docker-ce=5:"+in.Version+"*"), shell.Word("docker-ce-cli=5:"+in.Version+"*"))
	}
	return []string{
		aptEnv + "command -v curl >/dev/null || { apt-get update -q && apt-get install -y -q curl ca-certificates; }",
		"install -m 0755 -d /etc/apt/keyrings",
		fmt.Sprintf("curl -fsSL %s -o /etc/apt/keyrings/docker.asc && chmod a+r /etc/apt/keyrings/docker.asc", shell.Word(repo+"/linux/"+distro+"/gpg")),
		// The architecture is the host's own; the rest is one quoted word.
		`echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] "` + shell.Quote(repo+"/linux/"+distro+" "+codename+" stable") + ` > /etc/apt/sources.list.d/docker.list`,
		aptEnv + "apt-get update -q",
		aptEnv + "apt-get install -y -q " + pkgs,
	}, nil
}

// dockerAptSuite is the directory (debian or ubuntu) and suite of Docker's
// apt repository for os: Ubuntu's derivatives use Ubuntu's codename.
func dockerAptSuite(os OS) (distro, codename string, err error) {
	distro = "debian"
	if os.ID == "ubuntu" || contains(os.IDLike, "ubuntu") {
		distro = "ubuntu"
	}
	codename = os.VersionCodename
	if distro == "ubuntu" && os.UbuntuCodename != "" {
		codename = os.UbuntuCodename
	}
	if codename == "" {
		return "", "", fmt.Errorf("%s: /etc/os-release has no VERSION_CODENAME, needed for the docker-ce apt repository", os.PrettyName)
	}
	if !codenameRE.MatchString(codename) {
		return "", "", fmt.Errorf("%s: /etc/os-release's codename %q is not a suite name", os.PrettyName, codename)
	}
	return distro, codename, nil
}

// aptListFile holds the apt repository of repo_url for the distribution's
// docker.io package.
const aptListFile = "/etc/apt/sources.list.d/shoal-docker.list"

// fromAptRepo installs docker.io from the apt repository at repo_url (a
// mirror of the distribution, or one's own repository in its layout:
// dists/CODENAME/main). apt checks it with the keys the host already
// trusts; only this repository's lists are refreshed, so a host that
// reaches nothing else still installs.
func (Debian) fromAptRepo(os OS, pkg string, in Install) ([]string, error) {
	repo, err := repoRoot(in)
	if err != nil {
		return nil, err
	}
	codename := os.VersionCodename
	if os.UbuntuCodename != "" {
		codename = os.UbuntuCodename
	}
	if codename == "" || !codenameRE.MatchString(codename) {
		return nil, fmt.Errorf("%s: /etc/os-release has no usable VERSION_CODENAME, needed for the apt repository %s", os.PrettyName, repo)
	}
	only := "-o Dir::Etc::sourcelist=" + aptListFile + " -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
	return []string{
		"echo " + shell.Quote("deb "+repo+" "+codename+" main") + " > " + aptListFile,
		aptEnv + "apt-get update -q " + only,
		aptEnv + "apt-get install -y -q " + shell.Word(pkg),
	}, nil
}

// codenameRE is an apt suite name: it goes into sources.list as one word.
var codenameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func contains(list []string, s string) bool { return slices.Contains(list, s) }
