package osfamily

import (
	"strings"
	"testing"
)

func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{
		"", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
		"ID=ubuntu\r\nID_LIKE=debian\r\nVERSION_CODENAME=jammy\r\nUBUNTU_CODENAME=jammy\r\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"",
		"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"",
		"# comment\nID=centos\nVERSION_ID=7", "ID=", "=x\n==\n'\"", "ID=x; rm -rf /\nVERSION_CODENAME=$(id)",
		"ID=debian\nVERSION_CODENAME=" + strings.Repeat("a", 70000) + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		os := ParseOSRelease(text)
		// LF or CRLF, a final newline or none: the same OS.
		for _, v := range []string{strings.ReplaceAll(text, "\n", "\r\n"), strings.TrimRight(text, "\n") + "\n"} {
			if strings.Contains(text, "\r") {
				break
			}
			if got := ParseOSRelease(v); !same(got, os) {
				t.Fatalf("line ends changed the result: %+v vs %+v", got, os)
			}
		}
		for _, field := range append([]string{os.ID, os.VersionID, os.VersionCodename, os.UbuntuCodename, os.PrettyName}, os.IDLike...) {
			if strings.ContainsAny(field, "\n") {
				t.Fatalf("a field spans lines: %q", field)
			}
		}
		if os.ID != strings.ToLower(os.ID) {
			t.Fatalf("ID not lower case: %q", os.ID)
		}
		// Whatever it says, the commands built from it quote it or refuse.
		fam, err := Detect(os)
		if err != nil {
			return
		}
		cmds, err := fam.InstallDocker(os, "repo", Install{}, nil)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if strings.Contains(c, "\n") {
				t.Fatalf("a command spans lines: %q", c)
			}
		}
	})
}

func same(a, b OS) bool {
	return a.ID == b.ID && a.VersionID == b.VersionID && a.VersionCodename == b.VersionCodename &&
		a.UbuntuCodename == b.UbuntuCodename && a.PrettyName == b.PrettyName && strings.Join(a.IDLike, " ") == strings.Join(b.IDLike, " ")
}

// A codename that is not one suite name never reaches sources.list.
func TestCodenameRefused(t *testing.T) {
	for _, c := range []string{"jammy [trusted=yes]", "jammy\nx", "$(id)", "-x"} {
		os := OS{ID: "ubuntu", VersionCodename: c, PrettyName: "Ubuntu"}
		if _, err := (Debian{}).InstallDocker(os, "repo", Install{}, nil); err == nil || !strings.Contains(err.Error(), "not a suite name") {
			t.Errorf("%q: want refused, got %v", c, err)
		}
	}
}

// FuzzRepoFiles: whatever /etc/yum.repos.d holds, parsing and planning
// never panic, only files the host listed are set aside, and a repo id
// reaches a command as one quoted word.
func FuzzRepoFiles(f *testing.F) {
	f.Add(RepoFileMarker+"/etc/yum.repos.d/CentOS-Base.repo\n[base]\nmirrorlist=http://mirrorlist.centos.org/?release=7\n", "http://mirrorlist.centos.org 000\n")
	f.Add(RepoFileMarker+"/etc/yum.repos.d/r.repo\n[x'; reboot; ']\nenabled=0\nbaseurl=https://h/\n[extras x]\nenabled=0\n", "")
	f.Add("[orphan]\nbaseurl=\n"+RepoFileMarker+"\n\r\n[", "garbage\n")
	f.Fuzz(func(t *testing.T, listing, reach string) {
		d := ParseRepoFiles(listing)
		listed := map[string]bool{}
		for _, f := range d.Files {
			listed[f] = true
		}
		for _, os := range []OS{{ID: "centos", VersionID: "7"}, {ID: "centos", VersionID: "8", PrettyName: "CentOS Stream 8"}, {ID: "rhel", VersionID: "9.4"}} {
			p, _ := PlanOSRepos(os, d, ParseReach(reach), "https://vault.centos.org", true)
			for _, m := range p.MoveAside {
				if !listed[m] {
					t.Fatalf("set aside %q, which the host did not list", m)
				}
			}
		}
		cmd, err := RHEL7Extras(OS{ID: "rhel", VersionID: "7.9"}, d.Repos, true)
		if err == nil && strings.HasPrefix(cmd, "yum-config-manager --enable ") {
			id := strings.TrimPrefix(cmd, "yum-config-manager --enable ")
			if strings.ContainsAny(id, " ;$`\n") && !strings.HasPrefix(id, "'") {
				t.Fatalf("unquoted repo id: %q", cmd)
			}
		}
	})
}
