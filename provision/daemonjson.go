package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// DaemonSettings is what shoal wants in /etc/docker/daemon.json.
type DaemonSettings struct {
	// Lists are merged as unions with what the host has.
	InsecureRegistries []string
	RegistryMirrors    []string
	Labels             []string
	// Defaults are set only where the host has no value of its own.
	Defaults map[string]any
}

// conflictingTLSKeys are daemon.json keys that shoal sets on dockerd's
// command line when TLS is on: dockerd refuses to start when a flag and the
// file both set one.
const conflictingTLSKeys = "hosts tls tlsverify tlscacert tlscert tlskey"

// MergeDaemonJSON merges want into the host's daemon.json. exists says
// whether the host has the file. Keys the host has are kept, lists become
// unions. It returns the new content and whether it differs; invalid JSON on
// the host is an error, never overwritten.
func MergeDaemonJSON(current []byte, exists bool, want DaemonSettings) ([]byte, bool, error) {
	doc := map[string]any{}
	if exists && len(bytes.TrimSpace(current)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(current))
		dec.UseNumber() // keep numbers as the host wrote them
		if err := dec.Decode(&doc); err != nil {
			return nil, false, fmt.Errorf("/etc/docker/daemon.json on the host is not valid JSON (%v); fix or remove it, shoal will not overwrite it", err)
		}
		if dec.More() {
			return nil, false, fmt.Errorf("/etc/docker/daemon.json on the host is not valid JSON (trailing data); fix or remove it, shoal will not overwrite it")
		}
	}
	changed := false
	for key, values := range map[string][]string{
		"insecure-registries": want.InsecureRegistries,
		"registry-mirrors":    want.RegistryMirrors,
		"labels":              want.Labels,
	} {
		if len(values) == 0 {
			continue
		}
		merged, added, err := union(doc[key], values)
		if err != nil {
			return nil, false, fmt.Errorf("/etc/docker/daemon.json: %q: %w", key, err)
		}
		if added {
			doc[key] = merged
			changed = true
		}
	}
	keys := make([]string, 0, len(want.Defaults))
	for k := range want.Defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := doc[k]; !ok {
			doc[k] = want.Defaults[k]
			changed = true
		}
	}
	if !changed {
		return current, false, nil
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, false, err
	}
	return append(out, '\n'), true, nil
}

func union(existing any, add []string) ([]any, bool, error) {
	var list []any
	if existing != nil {
		l, ok := existing.([]any)
		if !ok {
			return nil, false, fmt.Errorf("the host has %v, not a list", existing)
		}
		list = l
	}
	seen := map[string]bool{}
	for _, v := range list {
		if s, ok := v.(string); ok {
			seen[s] = true
		}
	}
	added := false
	for _, v := range add {
		if !seen[v] {
			seen[v] = true
			list = append(list, v)
			added = true
		}
	}
	return list, added, nil
}

// daemonTLSConflicts lists keys of the host's daemon.json that would clash
// with the flags of shoal's systemd drop-in.
func daemonTLSConflicts(current []byte) []string {
	doc := map[string]any{}
	if json.Unmarshal(current, &doc) != nil {
		return nil
	}
	var out []string
	for _, k := range strings.Fields(conflictingTLSKeys) {
		if _, ok := doc[k]; ok {
			out = append(out, k)
		}
	}
	return out
}
