package osfamily

// Which docker-ce versions a host's repository offers, and whether a pin
// is among them.

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// lastFrozenMajor is the last docker-ce major built for CentOS 7 and 8
// (docker-ce-packaging removed both for v27).
const lastFrozenMajor = 26

// DockerRepoDir picks docker-ce's repository for the OS: RHEL has its own;
// CentOS 7 and 8's stopped at 26.1, so EL8 rebuilds take the rhel one,
// which is still built, unless a pin of 26 or older asks for what only the
// centos one has. EL9 rebuilds use centos/9, which is still built.
func DockerRepoDir(os OS, major int, version string) string {
	if os.ID == "rhel" && major >= 8 {
		return "rhel"
	}
	if major == 8 && !(version != "" && pinMajor(version) <= lastFrozenMajor) {
		return "rhel"
	}
	return "centos"
}

func pinMajor(v string) int {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ListVersionsCmd lists every docker-ce version the configured repositories
// offer, one "name.arch epoch:version-release repo" line each.
func (r RHEL) ListVersionsCmd() string {
	return packager(r.Major) + " -q list --showduplicates docker-ce"
}

var listLineRE = regexp.MustCompile(`^docker-ce\.\S+\s+(?:\d+:)?([0-9][0-9.]*)-\S+`)

// ParseVersions reads ListVersionsCmd's output: the versions, newest first,
// without repeats.
func ParseVersions(out string) []string {
	seen := map[string]bool{}
	var vs []string
	for _, l := range strings.Split(out, "\n") {
		if m := listLineRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			vs = append(vs, m[1])
		}
	}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[j], vs[i]) })
	return vs
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := pinMajor(as[i]), pinMajor(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// MadisonCmd lists the docker-ce versions apt's sources offer, one
// "docker-ce | 5:24.0.9-1~debian.12~bookworm | URL SUITE/stable ARCH Packages"
// line each.
const MadisonCmd = "apt-cache madison docker-ce"

var madisonRE = regexp.MustCompile(`^docker-ce\s*\|\s*(?:\d+:)?([0-9][0-9.]*)[-~+]\S*\s*\|`)

// ParseMadison reads MadisonCmd's output: the versions, newest first.
func ParseMadison(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if m := madisonRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			lines = append(lines, "docker-ce.any "+m[1]+"-1 r")
		}
	}
	return ParseVersions(strings.Join(lines, "\n"))
}

// CheckPin tells whether the repository offers the pinned version (24.0.9,
// or a prefix such as 27 or 26.1); its error lists what it does offer.
func CheckPin(offered []string, pin, repo string) error {
	if slices.ContainsFunc(offered, func(v string) bool { return v == pin || strings.HasPrefix(v, pin+".") }) {
		return nil
	}
	hint := ""
	if (strings.HasSuffix(repo, "/linux/centos/7") || strings.HasSuffix(repo, "/linux/centos/8")) && pinMajor(pin) > lastFrozenMajor {
		hint = fmt.Sprintf(" Docker stopped building for CentOS 7 and 8 after %d.1: pin %d.1 or older here, or use an EL9 host.", lastFrozenMajor, lastFrozenMajor)
	}
	return fmt.Errorf("docker-ce %s is not in %s, which offers %s.%s", pin, repo, offeredList(offered), hint)
}

// offeredList names the newest 12 versions offered, and how many more.
func offeredList(offered []string) string {
	shown, more := offered, ""
	if len(shown) > 12 {
		more = fmt.Sprintf(" and %d older", len(shown)-12)
		shown = shown[:12]
	}
	if len(shown) == 0 {
		return "nothing"
	}
	return strings.Join(shown, ", ") + more
}
