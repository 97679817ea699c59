// Package osfamily knows how each family of Linux distributions installs
// Docker and runs its services: the commands differ, the steps do not.
package osfamily

import (
	"bufio"
	"fmt"
	"strings"
)

// OS is what /etc/os-release says.
type OS struct {
	ID              string // debian, ubuntu, centos, rocky, almalinux, rhel
	IDLike          []string
	VersionID       string
	VersionCodename string
	PrettyName      string
}

// ParseOSRelease reads the KEY=value lines of /etc/os-release.
func ParseOSRelease(text string) OS {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
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
		PrettyName:      kv["PRETTY_NAME"],
	}
}

// Install says how Docker should get onto the host.
type Install struct {
	// Mode is auto, repo, distro or skip.
	Mode string
	// Version pins the engine version (e.g. 24.0.9); empty means the newest.
	Version string
	// RepoURL is the docker-ce repository root (https://download.docker.com
	// or a mirror such as https://mirrors.aliyun.com/docker-ce).
	RepoURL string
}

// DefaultRepoURL is Docker's own repository.
const DefaultRepoURL = "https://download.docker.com"

// Family is one family of distributions.
type Family interface {
	Name() string
	// InstallDocker returns the commands, run as root in order, that install
	// Docker from the given source ("repo" or "distro").
	InstallDocker(os OS, source string, in Install) ([]string, error)
}

// Detect picks the family of os, or says clearly that it is not supported.
func Detect(os OS) (Family, error) {
	ids := append([]string{os.ID}, os.IDLike...)
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return Debian{}, nil
		}
	}
	name := os.PrettyName
	if name == "" {
		name = os.ID
	}
	if name == "" {
		name = "an unknown OS (no /etc/os-release)"
	}
	return nil, fmt.Errorf("%s is not supported: shoal provisions Debian and Ubuntu hosts", name)
}
