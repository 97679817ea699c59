package validate

import (
	"strings"
	"testing"
)

// inj is the injection of issue 10: it must be refused by every check of a
// value that reaches a host.
const inj = "x; touch /tmp/pwned; echo x"

type strCase struct {
	in string
	ok bool
}

func check(t *testing.T, name string, f func(string) error, cases []strCase) {
	t.Helper()
	for _, c := range cases {
		err := f(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%s(%q) = %v, want ok=%v", name, c.in, err, c.ok)
		}
	}
}

func TestEveryCheckRefusesTheInjection(t *testing.T) {
	for name, f := range map[string]func(string) error{
		"Name": Name, "DNSName": DNSName, "Hostname": Hostname, "Host": Host, "UserName": UserName,
		"DockerUser": DockerUser, "EngineVersion": EngineVersion, "URL": URL, "InsecureRegistry": InsecureRegistry,
		"LabelKey": LabelKey, "LabelValue": LabelValue, "Fingerprint": Fingerprint, "RemotePath": RemotePath,
		"ImageRef": ImageRef, "ObjectName": ObjectName, "RepoURL": RepoURL, "AdvertiseAddr": AdvertiseAddr,
		"Label":        func(s string) error { _, _, err := Label(s); return err },
		"Label(value)": func(s string) error { _, _, err := Label("k=" + s); return err },
		"Label(key)":   func(s string) error { _, _, err := Label(s + "=v"); return err },
	} {
		for _, v := range []string{inj, "$(touch /tmp/pwned)", "`id`", "a\nb", "a|b", "a&&b"} {
			if err := f(v); err == nil {
				t.Errorf("%s(%q) accepted", name, v)
			}
		}
	}
}

func TestName(t *testing.T) {
	check(t, "Name", Name, []strCase{
		{"n1", true}, {"web-1.lab", true}, {"A", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"-a", false}, {".a", false}, {"a..b", false},
		{"../../victim", false}, {"a/b", false}, {"a_b", false}, {"a b", false},
	})
}

func TestHostnames(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	check(t, "DNSName", DNSName, []strCase{
		{"localhost", true}, {"node-1.example.com", true}, {"1node", true}, {long63, true},
		{strings.TrimSuffix(strings.Repeat(long63+".", 4), ".")[:253], true},
		{"", false}, {"bad host!", false}, {"-a", false}, {"a-", false}, {"a..b", false}, {".a", false},
		{"a.", false}, {"a_b", false}, {long63 + "a", false}, {strings.Repeat("a.", 127) + "ab", false},
		{"héllo", false},
	})
	check(t, "Hostname", Hostname, []strCase{
		{"n1", true}, {"node.lab", true}, {long63, true},
		{long63 + "a", false}, {long63[:40] + "." + long63[:30], false}, {"bad host!", false},
		{strings.Repeat("a.", 130), false},
	})
	check(t, "Host", Host, []strCase{
		{"127.0.0.1", true}, {"::1", true}, {"fe80::1", true}, {"localhost", true}, {"host.example", true},
		{"", false}, {"[::1]", false}, {"127.0.0.1:22", false}, {"-oProxyCommand=x", false}, {"a b", false},
	})
}

func TestUsers(t *testing.T) {
	check(t, "UserName", UserName, []strCase{
		{"root", true}, {"_svc", true}, {"ubuntu", true}, {"hadoop-1", true}, {"smb$", true},
		{strings.Repeat("a", 32), true},
		// As shadow's useradd and LDAP/FreeIPA hosts have them.
		{"john.doe", true}, {"John_Doe", true}, {"Root", true}, {"1user", true}, {".hidden", true}, {"a.b-c_d", true},
		{"", false}, {"-user", false}, {"a$b", false}, {"a b", false}, {"a\tb", false},
		{"a;b", false}, {strings.Repeat("a", 33), false}, {"x\n", false},
		{"1000", false}, {".", false}, {"..", false}, {"a:b", false}, {"a/b", false}, {"a\x00b", false}, {"a\x7f", false},
		{"a'b", false}, {"a$(id)", false}, {"é", false},
		// Directory accounts: refused (validate.go says why).
		{"john@corp.example.com", false}, {`CORP\john`, false},
	})
	check(t, "DockerUser", DockerUser, []strCase{{"docker", true}, {"smb$", false}, {"", false}})
}

func TestEngineVersion(t *testing.T) {
	check(t, "EngineVersion", EngineVersion, []strCase{
		{"", true}, {"24", true}, {"24.0", true}, {"24.0.9", true},
		{"24.0.9.1", false}, {"v24", false}, {"24.0.9-1", false}, {"24.*", false}, {"24.0; id", false}, {"24.0\n", false},
	})
}

func TestURL(t *testing.T) {
	check(t, "URL", URL, []strCase{
		{"https://download.docker.com", true}, {"http://mirror.local:5000", true}, {"https://mirrors.aliyun.com/docker-ce/", true},
		{"http://10.0.0.1:8080/a/b", true}, {"https://[::1]:5000", true},
		{"", false}, {"ftp://x", false}, {"mirror.local", false}, {"https://", false}, {"https://a b", false},
		{"https://u:p@host", false}, {"https://host/?q=1", false}, {"https://host/#f", false},
		{"https://host:99999", false}, {"https://host:", false}, {"https://host/a'b", false},
		{"https://host/a+b", false}, {"https://host/$(id)", false}, {"https://bad_host", false},
		{"https:host", false}, {"https://héllo", false},
	})
}

func TestInsecureRegistry(t *testing.T) {
	check(t, "InsecureRegistry", InsecureRegistry, []strCase{
		{"registry.local:5000", true}, {"10.0.0.0/8", true}, {"fd00::/8", true}, {"localhost", true}, {"[::1]:5000", true},
		{"10.0.0.1", true},
		{"", false}, {"http://registry:5000", false}, {"10.0.0.0/99", false}, {"reg:abc", false}, {"a b:5000", false},
	})
}

func TestLabels(t *testing.T) {
	for _, c := range []struct {
		in   string
		k, v string
		ok   bool
	}{
		{"zone=eu", "zone", "eu", true},
		{"com.example.disk=ssd", "com.example.disk", "ssd", true},
		{"k=", "k", "", true},
		{"desc=two words", "desc", "two words", true},
		{"k=a=b", "k", "a=b", true},
		{"k=日本", "k", "日本", true},
		{"novalue", "", "", false},
		{"=v", "", "", false},
		{"a b=v", "", "", false},
		{"k=\xff\xfe", "", "", false}, // invalid UTF-8 never converges in daemon.json
		{"\xff=v", "", "", false},
		{"\xff", "", "", false},
		{"k=a\tb", "", "", false},
		{"k=a\x00b", "", "", false},
		{"k=" + strings.Repeat("v", 1025), "", "", false},
		{strings.Repeat("k", 129) + "=v", "", "", false},
	} {
		k, v, err := Label(c.in)
		if (err == nil) != c.ok || k != c.k || v != c.v {
			t.Errorf("Label(%q) = %q, %q, %v; want %q, %q, ok=%v", c.in, k, v, err, c.k, c.v, c.ok)
		}
	}
}

func TestPort(t *testing.T) {
	for n, ok := range map[int]bool{1: true, 22: true, 65535: true, 0: false, -1: false, 65536: false} {
		if err := Port(n); (err == nil) != ok {
			t.Errorf("Port(%d) = %v, want ok=%v", n, err, ok)
		}
	}
}

func TestFingerprint(t *testing.T) {
	fp := "SHA256:" + strings.Repeat("A", 42) + "8"
	check(t, "Fingerprint", Fingerprint, []strCase{
		{fp, true}, {"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", true},
		{"", false}, {"MD5:aa:bb", false}, {"SHA256:short", false}, {fp + "=", false}, {"sha256:" + fp[7:], false},
		{"SHA256:" + strings.Repeat("A", 42) + "!", false},
	})
}

func TestRemotePath(t *testing.T) {
	check(t, "RemotePath", RemotePath, []strCase{
		{"/var/lib/registry", true}, {"/srv/data_1/", true}, {"/a", true},
		{"", false}, {"/", false}, {"relative/path", false}, {"/a/../etc", false}, {"/a/./b", false}, {"/a b", false},
		{"/a//b", false}, {"/var/$(id)", false},
	})
}

func TestImageRef(t *testing.T) {
	check(t, "ImageRef", ImageRef, []strCase{
		{"registry:2", true}, {"shoal/node:latest", true}, {"localhost:5000/team/app:1.0", true},
		{"alpine@sha256:" + strings.Repeat("a", 64), true}, {"ghcr.io/x/y", true},
		{"", false}, {"Registry:2", false}, {"a b", false}, {"-x", false}, {"a:b:c", false},
	})
}

func TestRepoURLAndAdvertiseAddr(t *testing.T) {
	check(t, "RepoURL", RepoURL, []strCase{
		{"https://download.docker.com", true}, {"https://[::1]/x", false}, {inj, false},
	})
	check(t, "AdvertiseAddr", AdvertiseAddr, []strCase{
		{"10.0.0.1", true}, {"10.0.0.1:2377", true}, {"eth0", true}, {"eth0:2377", true}, {"::1", true}, {"[::1]:2377", true},
		{"", false}, {"eth0:99999", false}, {"a b", false},
	})
}

func TestObjectName(t *testing.T) {
	check(t, "ObjectName", ObjectName, []strCase{
		{"shoal", true}, {"shoal-lab_1.net", true}, {"", false}, {"-x", false}, {"a/b", false}, {"a b", false},
	})
}

func TestStackName(t *testing.T) {
	check(t, "StackName", StackName, []strCase{
		{"web", true}, {"dockercoins", true}, {"my_app-2", true}, {"A1", true},
		{"", false}, {"-x", false}, {"x-", false}, {"a.b", false}, {"a b", false}, {inj, false},
		{"abcdefghijklmnopqrstuvwxyz012345", true}, {"abcdefghijklmnopqrstuvwxyz0123456", false},
	})
}

func TestEnums(t *testing.T) {
	for _, s := range []string{"manager", "worker"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Manager", "leader", inj} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) accepted", s)
		}
	}
	for _, s := range []string{"", "active", "pause", "drain"} {
		if a, err := ParseAvailability(s); err != nil || string(a) != s {
			t.Errorf("ParseAvailability(%q) = %q, %v", s, a, err)
		}
	}
	for _, s := range []string{"Active", "paused", inj} {
		if _, err := ParseAvailability(s); err == nil {
			t.Errorf("ParseAvailability(%q) accepted", s)
		}
	}
	for in, want := range map[string]InstallMode{"": InstallAuto, "auto": InstallAuto, "repo": InstallRepo, "distro": InstallDistro, "skip": InstallSkip} {
		if m, err := ParseInstallMode(in); err != nil || m != want {
			t.Errorf("ParseInstallMode(%q) = %q, %v; want %q", in, m, err, want)
		}
	}
	for _, s := range []string{"apt", "AUTO", inj} {
		if _, err := ParseInstallMode(s); err == nil {
			t.Errorf("ParseInstallMode(%q) accepted", s)
		}
	}
}
