package cluster

import (
	"reflect"
	"testing"
)

// TestPeerSSHFiles: the key, config and known_hosts are written only where
// they differ from what the host has; a key-only rotation writes no
// config or known_hosts.
func TestPeerSSHFiles(t *testing.T) {
	pf := &peerFiles{keyName: "shoal-c", begin: "# begin c", end: "# end c", configBlock: "# begin c\nHost m1\n# end c\n", knownBlock: "# begin c\nm1 ssh-ed25519 AAAA\n# end c\n",
		keySum: "abc", priv: []byte("KEY")}
	cfg, known := replaceBlock("", pf.begin, pf.end, pf.configBlock), replaceBlock("", pf.begin, pf.end, pf.knownBlock)
	keyOnly := *pf
	keyOnly.keyOnly = true
	for _, tc := range []struct {
		name  string
		pf    *peerFiles
		parts []string
		want  []string
	}{
		{"a fresh host", pf, []string{"/home/u g", "", "", "", ""}, []string{"key", "config", "known_hosts"}},
		{"up to date", pf, []string{"/home/u g", cfg, known, "abc  /home/u/.ssh/shoal-c", ""}, nil},
		{"known_hosts changed", pf, []string{"/home/u g", cfg, "", "abc  /home/u/.ssh/shoal-c", ""}, []string{"known_hosts"}},
		{"a key-only rotation", &keyOnly, []string{"/home/u g", "", "", "old", ""}, []string{"key"}},
	} {
		files, wrote := peerSSHFiles(tc.parts, "/home/u", "u:g", tc.pf)
		if !reflect.DeepEqual(wrote, tc.want) || len(files) != len(tc.want) {
			t.Errorf("%s: wrote %v (%d files), want %v", tc.name, wrote, len(files), tc.want)
		}
		for _, f := range files {
			if f.Mode != 0o600 || f.Owner != "u:g" {
				t.Errorf("%s: %s mode %o owner %q", tc.name, f.Path, f.Mode, f.Owner)
			}
		}
	}
}
