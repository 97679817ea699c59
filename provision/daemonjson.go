package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
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
// unions. It returns the new content and whether it differs; a file that is
// not one JSON object (invalid, null, a list, trailing data) is an error and
// is never overwritten. A file with CRLF line ends is written back with
// CRLF.
func MergeDaemonJSON(current []byte, exists bool, want DaemonSettings) ([]byte, bool, error) {
	doc := map[string]any{}
	if exists && len(bytes.TrimSpace(current)) > 0 {
		var err error
		if doc, err = parseDaemonJSON(current); err != nil {
			return nil, false, fmt.Errorf("%s on the host %v; fix or remove it, shoal will not overwrite it", daemonJSONPath, err)
		}
	}
	changed, err := mergeLists(doc, want)
	if err != nil {
		return nil, false, err
	}
	if addDefaults(doc, want.Defaults) {
		changed = true
	}
	if !changed {
		return current, false, nil
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, false, err
	}
	out = append(out, '\n')
	if bytes.Contains(current, []byte("\r\n")) {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	return out, true, nil
}

// mergeLists makes the list keys of doc the unions of theirs and want's;
// it says whether any grew.
func mergeLists(doc map[string]any, want DaemonSettings) (bool, error) {
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
			return false, fmt.Errorf("/etc/docker/daemon.json: %q: %w", key, err)
		}
		if added {
			doc[key] = merged
			changed = true
		}
	}
	return changed, nil
}

// addDefaults sets the keys of defaults that doc lacks; it says whether
// it set any.
func addDefaults(doc map[string]any, defaults map[string]any) bool {
	changed := false
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		if _, ok := doc[k]; !ok {
			doc[k] = defaults[k]
			changed = true
		}
	}
	return changed
}

// parseDaemonJSON reads a daemon.json that must be exactly one JSON object.
// Its errors complete "daemon.json on the host ...".
func parseDaemonJSON(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers as the host wrote them
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON (%v)", err)
	}
	// More() says false at a stray '}' or ']': only EOF means nothing follows.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("is not valid JSON (trailing data after the object, at byte %d)", dec.InputOffset())
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is not valid JSON for dockerd: it holds %s, not an object", jsonKind(v))
	}
	return doc, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
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
	doc, err := parseDaemonJSON(current)
	if err != nil {
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

// flagKeys are dockerd's flags whose daemon.json key has another name.
var flagKeys = map[string]string{
	"add-runtime": "runtimes", "authorization-plugin": "authorization-plugins", "cdi-spec-dir": "cdi-spec-dirs",
	"default-address-pool": "default-address-pools", "default-network-opt": "default-network-opts",
	"default-ulimit": "default-ulimits", "dns-opt": "dns-opts", "exec-opt": "exec-opts", "feature": "features",
	"graph": "data-root", "insecure-registry": "insecure-registries", "label": "labels", "log-opt": "log-opts",
	"node-generic-resource": "node-generic-resources", "registry-mirror": "registry-mirrors",
	"storage-opt": "storage-opts", "host": "hosts",
}

// shortFlags are dockerd's one-letter flags.
var shortFlags = map[string]string{"H": "hosts", "D": "debug", "l": "log-level", "s": "storage-driver", "b": "bridge", "g": "data-root", "G": "group", "p": "pidfile"}

// DaemonKeyOfFlag is the daemon.json key that dockerd's flag name (without
// its dashes: log-opt, label, H) sets; a name that is no flag of another
// key's is returned as it is.
func DaemonKeyOfFlag(name string) string {
	if k, ok := flagKeys[name]; ok {
		return k
	}
	if k, ok := shortFlags[name]; ok {
		return k
	}
	return name
}

// flagConflicts lists the keys of the daemon.json doc that a flag of the
// command line exec sets too: dockerd refuses to start with both.
func flagConflicts(exec string, doc []byte) []string {
	keys, err := parseDaemonJSON(doc)
	if err != nil || len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.Fields(exec) {
		if !strings.HasPrefix(w, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		k := DaemonKeyOfFlag(name)
		if _, set := keys[k]; set && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
