package provision

import (
	"fmt"
	"strings"
)

// HostEntry is one line of the cluster block of /etc/hosts.
type HostEntry struct {
	IP    string
	Names []string
}

// The marker lines of the cluster block (cluster down --purge removes it).
const (
	HostsBegin = hostsBegin
	HostsEnd   = hostsEnd
	hostsBegin = "# BEGIN shoal: cluster nodes (managed, do not edit)"
	hostsEnd   = "# END shoal"
)

// EditHosts returns /etc/hosts with hostname on the 127.0.1.1 line and the
// cluster block between marker lines; everything else stays as it was.
func EditHosts(content, hostname string, entries []HostEntry) string {
	lines := strings.Split(strings.TrimRight(content, "\n"), "\n")
	if content == "" {
		lines = nil
	}
	// Drop the old block; it is written anew below.
	var kept []string
	inBlock := false
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == hostsBegin:
			inBlock = true
		case strings.TrimSpace(l) == hostsEnd && inBlock:
			inBlock = false
		case !inBlock:
			kept = append(kept, l)
		}
	}
	loopback := "127.0.1.1\t" + hostname
	found := false
	insertAt := -1
	for i, l := range kept {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == "127.0.1.1" {
			found = true
			if !containsString(f[1:], hostname) {
				kept[i] = loopback
			}
		}
		if f[0] == "127.0.0.1" && insertAt < 0 {
			insertAt = i + 1
		}
	}
	if !found {
		if insertAt < 0 {
			insertAt = len(kept)
		}
		kept = append(kept[:insertAt], append([]string{loopback}, kept[insertAt:]...)...)
	}
	if len(entries) > 0 {
		kept = append(kept, hostsBegin)
		for _, e := range entries {
			kept = append(kept, fmt.Sprintf("%s\t%s", e.IP, strings.Join(e.Names, " ")))
		}
		kept = append(kept, hostsEnd)
	}
	return strings.Join(kept, "\n") + "\n"
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
