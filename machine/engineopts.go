package machine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
)

var optKeyRE = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$`)

// listKeys are daemon.json keys whose value is a list: --engine-opt dns=X
// given twice makes ["X", "Y"], as dockerd's repeated flag would.
var listKeys = map[string]bool{
	"dns": true, "dns-opts": true, "dns-search": true, "exec-opts": true, "storage-opts": true,
	"allow-nondistributable-artifacts": true, "authorization-plugins": true, "default-ulimits": false,
}

// ownedKeys are daemon.json keys another flag (or shoal's TLS) sets.
var ownedKeys = map[string]string{
	"hosts": "shoal sets the engine's sockets (TCP with TLS)", "tls": "--engine-tls", "tlsverify": "--engine-tls",
	"tlscacert": "--engine-tls", "tlscert": "--engine-tls", "tlskey": "--engine-tls",
	"insecure-registries": "--engine-insecure-registry", "registry-mirrors": "--engine-registry-mirror",
	"labels": "--engine-label", "storage-driver": "--engine-storage-driver",
}

var storageDriverRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// EngineDefaults turns --engine-opt k=v and --engine-storage-driver into
// daemon.json keys. A value that reads as JSON (true, 3, ["a"]) is taken
// as such, anything else as a string. The provisioner sets them only where
// the host's daemon.json has no value of its own.
func EngineDefaults(opts []string, storageDriver string) (map[string]any, error) {
	out := map[string]any{}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		k = strings.TrimPrefix(k, "--")
		if !ok || !optKeyRE.MatchString(k) {
			return nil, fmt.Errorf("--engine-opt %q: want key=value with a daemon.json key (log-level=debug, dns=8.8.8.8)", o)
		}
		if why, owned := ownedKeys[k]; owned {
			return nil, fmt.Errorf("--engine-opt %s: not here: %s", k, why)
		}
		val := parseOptValue(v)
		if listKeys[k] {
			prev, _ := out[k].([]any)
			if l, isList := val.([]any); isList {
				out[k] = append(prev, l...)
			} else {
				out[k] = append(prev, val)
			}
			continue
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--engine-opt %s is given twice", k)
		}
		out[k] = val
	}
	if storageDriver != "" {
		if !storageDriverRE.MatchString(storageDriver) {
			return nil, fmt.Errorf("--engine-storage-driver %q: want a driver name (overlay2, btrfs, zfs, vfs, ...)", storageDriver)
		}
		out["storage-driver"] = storageDriver
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func parseOptValue(v string) any {
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	var x any
	if t := strings.TrimSpace(v); t != "" && dec.Decode(&x) == nil && !dec.More() {
		if _, isString := x.(string); !isString {
			return x
		}
	}
	return v
}

var sanRE = regexp.MustCompile(`^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$`)

// ValidateSANs checks --tls-san values: host names or IP addresses.
func ValidateSANs(sans []string) error {
	for _, s := range sans {
		if net.ParseIP(s) == nil && !sanRE.MatchString(s) {
			return fmt.Errorf("--tls-san %q: want a host name or an IP address", s)
		}
	}
	return nil
}

// splitSANs sorts extra certificate names into names and addresses.
func splitSANs(sans []string) (names []string, ips []net.IP) {
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names, ips
}
