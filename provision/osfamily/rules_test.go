package osfamily

import (
	"testing"

	"github.com/shoal-dev/shoal/internal/validate"
)

// TestRulesAreValidates: the guards at the host's command line take what
// the command line's checks take (validate.EngineVersion, validate.RepoURL)
// and nothing more: one rule, one place. The two version patterns differed
// (12345 and 1.2.34567 passed here, not at the command line).
func TestRulesAreValidates(t *testing.T) {
	for _, v := range []string{"", "24", "24.0", "24.0.9", "12345", "1.2.34567", "24.0.9.1", "24.x", "v24", "24.0.9;id"} {
		if got, want := checkVersion(v) == nil, validate.EngineVersion(v) == nil; got != want {
			t.Errorf("version %q: here ok=%v, validate ok=%v", v, got, want)
		}
	}
	for _, u := range []string{"https://download.docker.com", "http://10.0.0.1:8080/docker-ce", "https://a..b/x",
		"https://host:99999/x", "https://[::1]/x", "https://host/a b", "ftp://host/x", "https://user@host/x", "https://host/x?y"} {
		_, err := repoRoot(Install{RepoURL: u})
		if got, want := err == nil, validate.RepoURL(u) == nil; got != want {
			t.Errorf("repo URL %q: here ok=%v, validate ok=%v", u, got, want)
		}
	}
}
