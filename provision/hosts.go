package provision

import (
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/templates"
)

// HostEntry is one line of the cluster block of /etc/hosts.
type HostEntry = templates.HostsEntry

// The marker lines of the cluster block (cluster down --purge removes it).
const (
	HostsBegin = hostsBegin
	HostsEnd   = hostsEnd
	hostsBegin = templates.HostsBegin
	hostsEnd   = templates.HostsEnd
)

// EditHosts returns /etc/hosts with hostname on the 127.0.1.1 line and the
// cluster block between marker lines; every other line stays byte for byte,
// its line end included. Lines shoal adds end as the file's lines do (CRLF
// or LF); a last line without one gets one before anything is added after
// it. The block's text is templates.HostsBlock's; an entry that /etc/hosts cannot
// hold (a space, a '#') is an error.
func EditHosts(content, hostname string, entries []HostEntry) (string, error) {
	nl := "\n"
	if strings.Contains(content, "\r\n") {
		nl = "\r\n"
	}
	kept := setLoopback(dropHostsBlock(splitLines(content)), hostname, nl)
	kept, err := appendHostsBlock(kept, entries, nl)
	if err != nil {
		return "", err
	}
	// Only the file's last line can lack an end; it may not be last now.
	for i := range len(kept) - 1 {
		if !strings.HasSuffix(kept[i], "\n") {
			kept[i] += nl
		}
	}
	return strings.Join(kept, ""), nil
}

// splitLines splits content into lines that each keep their own end; only
// the last may have none.
func splitLines(content string) []string {
	lines := strings.SplitAfter(content, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// dropHostsBlock drops the old cluster block; it is written anew.
func dropHostsBlock(lines []string) []string {
	var kept []string
	inBlock := false
	for _, l := range lines {
		switch text := strings.TrimSpace(l); {
		case !inBlock && text == hostsBegin:
			inBlock = true
		case inBlock && text == hostsEnd:
			inBlock = false
		case !inBlock:
			kept = append(kept, l)
		}
	}
	return kept
}

// setLoopback names hostname on the 127.0.1.1 line, rewriting a line that
// lacks it, or adds one after the first 127.0.0.1 line (else at the end).
func setLoopback(kept []string, hostname, nl string) []string {
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
				kept[i] = loopback + lineEnd(l, nl)
			}
		}
		if f[0] == "127.0.0.1" && insertAt < 0 {
			insertAt = i + 1
		}
	}
	if found {
		return kept
	}
	if insertAt < 0 {
		insertAt = len(kept)
	}
	return slices.Insert(kept, insertAt, loopback+nl)
}

// appendHostsBlock adds the cluster block (none for no entries), its lines
// ending in nl.
func appendHostsBlock(kept []string, entries []HostEntry, nl string) ([]string, error) {
	if len(entries) == 0 {
		return kept, nil
	}
	block, err := templates.HostsBlock(entries)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.SplitAfter(strings.TrimSuffix(block, "\n"), "\n") {
		kept = append(kept, strings.TrimSuffix(l, "\n")+nl)
	}
	return kept, nil
}

// lineEnd is l's line end: "\n", "\r\n", or def for a last line that has none.
func lineEnd(l, def string) string {
	switch {
	case strings.HasSuffix(l, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(l, "\n"):
		return "\n"
	}
	return def
}

func containsString(list []string, s string) bool { return slices.Contains(list, s) }
