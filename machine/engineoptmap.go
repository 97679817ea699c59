package machine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/provision"
)

// optKind is the shape of a daemon.json value, and so how an --engine-opt
// value becomes one.
type optKind int

const (
	kString   optKind = iota // "debug"
	kBool                    // true; a bare key (live-restore) is true
	kInt                     // 1400
	kList                    // ["8.8.8.8"]: one item a flag, or a JSON list
	kMap                     // {"max-size":"10m"}: k=v a flag, or a JSON object of strings
	kUlimits                 // {"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}}: nofile=1024:2048
	kRuntimes                // {"name":{"path":"/usr/bin/x"}}: name=path
	kPools                   // [{"base":"10.10.0.0/16","size":24}]: base=CIDR,size=N
	kBoolMap                 // {"buildkit":true}: name=true
	kObject                  // any JSON object, as given
)

// daemonKeys are the daemon.json keys of dockerd (20.10 to 27) on Linux,
// with the shape of their values. A key not here is refused: dockerd
// refuses to start with a key it does not know.
var daemonKeys = map[string]optKind{
	"allow-nondistributable-artifacts": kList, "api-cors-header": kString, "authorization-plugins": kList,
	"bip": kString, "bridge": kString, "builder": kObject, "cdi-spec-dirs": kList, "cgroup-parent": kString,
	"containerd": kString, "containerd-namespace": kString, "containerd-plugins-namespace": kString,
	"cpu-rt-period": kInt, "cpu-rt-runtime": kInt, "data-root": kString, "debug": kBool,
	"default-address-pools": kPools, "default-cgroupns-mode": kString, "default-gateway": kString,
	"default-gateway-v6": kString, "default-ipc-mode": kString, "default-network-opts": kObject,
	"default-runtime": kString, "default-shm-size": kString, "default-ulimits": kUlimits, "dns": kList,
	"dns-opts": kList, "dns-search": kList, "exec-opts": kList, "exec-root": kString, "experimental": kBool,
	"features": kBoolMap, "fixed-cidr": kString, "fixed-cidr-v6": kString, "group": kString,
	"host-gateway-ip": kString, "icc": kBool, "init": kBool, "init-path": kString,
	"insecure-registries": kList, "ip": kString, "ip-forward": kBool, "ip-masq": kBool, "ip6tables": kBool,
	"iptables": kBool, "ipv6": kBool, "labels": kList, "live-restore": kBool, "log-driver": kString,
	"log-format": kString, "log-level": kString, "log-opts": kMap, "max-concurrent-downloads": kInt,
	"max-concurrent-uploads": kInt, "max-download-attempts": kInt, "metrics-addr": kString, "mtu": kInt,
	"network-control-plane-mtu": kInt, "no-new-privileges": kBool, "node-generic-resources": kList,
	"oom-score-adjust": kInt, "pidfile": kString, "proxies": kObject, "raw-logs": kBool,
	"registry-mirrors": kList, "runtimes": kRuntimes, "seccomp-profile": kString, "selinux-enabled": kBool,
	"shutdown-timeout": kInt, "storage-driver": kString, "storage-opts": kList,
	"swarm-default-advertise-addr": kString, "userland-proxy": kBool, "userland-proxy-path": kString,
	"userns-remap": kString,
}

// ownedKeys are daemon.json keys shoal's TLS sets on dockerd's command line.
var ownedKeys = map[string]string{
	"hosts": "shoal sets the engine's sockets (TCP with TLS)", "tls": "--engine-tls", "tlsverify": "--engine-tls",
	"tlscacert": "--engine-tls", "tlscert": "--engine-tls", "tlskey": "--engine-tls",
}

// ulimitNames are the names dockerd's --default-ulimit takes.
var ulimitNames = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true, "locks": true, "memlock": true,
	"msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true, "rtprio": true, "rttime": true,
	"sigpending": true, "stack": true,
}

// EngineConfig is what --engine-opt and --engine-storage-driver ask of
// daemon.json.
type EngineConfig struct {
	// Defaults are set only where the host's daemon.json has no value.
	Defaults map[string]any
	// Lists merge with --engine-label, --engine-insecure-registry and
	// --engine-registry-mirror (unions with the host's).
	Labels, InsecureRegistries, RegistryMirrors []string
}

// EngineOptions turns --engine-opt values, written as daemon.json keys
// (log-opts={"max-size":"10m"}) or as docker-machine passes dockerd's flags
// (log-opt=max-size=10m, default-ulimit=nofile=1024:2048, label=k=v), into
// daemon.json. A key dockerd does not know, or a value of the wrong shape,
// is an error naming the flag: nothing is written for it.
func EngineOptions(opts []string, storageDriver string) (EngineConfig, error) {
	doc := map[string]any{}
	for _, o := range opts {
		key, val, err := parseEngineOpt(o)
		if err != nil {
			return EngineConfig{}, err
		}
		if err := addOpt(doc, key, val); err != nil {
			return EngineConfig{}, fmt.Errorf("--engine-opt %s: %w", o, err)
		}
	}
	if storageDriver != "" {
		if validate.StorageDriver(storageDriver) != nil {
			return EngineConfig{}, fmt.Errorf("--engine-storage-driver %q: want a driver name (overlay2, btrfs, zfs, vfs, ...)", storageDriver)
		}
		if have, ok := doc["storage-driver"]; ok && have != storageDriver {
			return EngineConfig{}, fmt.Errorf("--engine-opt storage-driver=%v and --engine-storage-driver %s differ", have, storageDriver)
		}
		doc["storage-driver"] = storageDriver
	}
	return splitLists(doc)
}

// parseEngineOpt reads one --engine-opt: its daemon.json key and the value
// in the shape dockerd wants.
func parseEngineOpt(o string) (string, any, error) {
	name, v, hasValue := strings.Cut(o, "=")
	name = strings.TrimPrefix(name, "--")
	if validate.EngineOptKey(name) != nil {
		return "", nil, fmt.Errorf("--engine-opt %q: want key=value with a daemon.json key or a dockerd flag (log-level=debug, log-opt=max-size=10m)", o)
	}
	key := provision.DaemonKeyOfFlag(name)
	if why, owned := ownedKeys[key]; owned {
		return "", nil, fmt.Errorf("--engine-opt %s: not here: %s", name, why)
	}
	kind, known := daemonKeys[key]
	if !known {
		return "", nil, fmt.Errorf("--engine-opt %s: dockerd has no such daemon.json key or flag (it would refuse to start)%s", name, suggestKey(name))
	}
	if !hasValue && kind != kBool {
		return "", nil, fmt.Errorf("--engine-opt %q: want %s=VALUE", o, name)
	}
	val, err := optValue(kind, v)
	if err != nil {
		return "", nil, fmt.Errorf("--engine-opt %s: %w", o, err)
	}
	return key, val, nil
}

// optValue turns the text after key= into the value's shape.
func optValue(kind optKind, v string) (any, error) {
	if strings.ContainsAny(v, "\x00\n\r") {
		return nil, fmt.Errorf("the value holds a control character")
	}
	switch kind {
	case kString:
		return stringValue(v)
	case kBool:
		return boolValue(v)
	case kInt:
		return intValue(v)
	case kList:
		return listValue(v)
	case kMap, kUlimits, kRuntimes, kBoolMap:
		return pairValue(kind, v)
	case kPools:
		return poolValue(v)
	case kObject:
		return objectValue(v)
	}
	return nil, fmt.Errorf("unknown kind %d", kind)
}

func stringValue(v string) (any, error) {
	if v == "" {
		return nil, fmt.Errorf("want a value")
	}
	return v, nil
}

// boolValue reads a bool; no value (a bare flag) is true.
func boolValue(v string) (any, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("want true or false")
	}
	return b, nil
}

func intValue(v string) (any, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("want a whole number")
	}
	return n, nil
}

func objectValue(v string) (any, error) {
	obj, ok := jsonValue(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object")
	}
	return obj, nil
}

// jsonValue is v read as JSON, or nil when it is not JSON.
func jsonValue(v string) any {
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	var x any
	if dec.Decode(&x) != nil || dec.More() {
		return nil
	}
	if _, err := dec.Token(); err == nil {
		return nil // trailing data
	}
	return x
}

// listValue is one item, or a JSON list of strings.
func listValue(v string) ([]any, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		l, ok := jsonValue(v).([]any)
		if !ok {
			return nil, fmt.Errorf("want a JSON list of strings")
		}
		for _, x := range l {
			if s, isString := x.(string); !isString || s == "" {
				return nil, fmt.Errorf("want a JSON list of strings")
			}
		}
		return l, nil
	}
	if v == "" {
		return nil, fmt.Errorf("want a value")
	}
	return []any{v}, nil
}

// pairForms are what a map key's flag form looks like, for errors.
var pairForms = map[optKind]string{
	kMap: "KEY=VALUE (max-size=10m)", kUlimits: "NAME=SOFT[:HARD] (nofile=1024:2048)",
	kRuntimes: "NAME=PATH (runsc=/usr/local/bin/runsc)", kBoolMap: "NAME=true|false (buildkit=true)",
}

// pairValue reads NAME=VALUE (a flag's form) or a JSON object (the
// daemon.json form) into a map.
func pairValue(kind optKind, v string) (map[string]any, error) {
	out := map[string]any{}
	if strings.HasPrefix(strings.TrimSpace(v), "{") {
		obj, ok := jsonValue(v).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a JSON object or %s", pairForms[kind])
		}
		for k, x := range obj {
			val, err := mapItem(kind, k, x)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	}
	k, x, ok := strings.Cut(v, "=")
	if !ok {
		return nil, fmt.Errorf("want %s", pairForms[kind])
	}
	val, err := mapItem(kind, k, x)
	if err != nil {
		return nil, err
	}
	out[k] = val
	return out, nil
}

// mapItem checks one item of a map key: x is the flag form's text or the
// JSON object's value.
func mapItem(kind optKind, name string, x any) (any, error) {
	if name == "" || strings.ContainsAny(name, " \t") {
		return nil, fmt.Errorf("%q: want a name", name)
	}
	switch kind {
	case kMap:
		if s, ok := x.(string); ok {
			return s, nil
		}
	case kBoolMap:
		if b, ok := boolItem(x); ok {
			return b, nil
		}
	case kUlimits:
		return ulimitItem(name, x)
	case kRuntimes:
		if r, ok := runtimeItem(x); ok {
			return r, nil
		}
	}
	return nil, wantPair(kind, name)
}

func wantPair(kind optKind, name string) error {
	return fmt.Errorf("%s: want %s", name, pairForms[kind])
}

// boolItem reads a bool map's item: a JSON bool or a bool's text.
func boolItem(x any) (bool, bool) {
	if b, ok := x.(bool); ok {
		return b, true
	}
	s, isString := x.(string)
	b, err := strconv.ParseBool(s)
	return b, isString && err == nil
}

// ulimitItem reads SOFT[:HARD] or daemon.json's ulimit object.
func ulimitItem(name string, x any) (any, error) {
	if s, ok := x.(string); ok {
		return ulimitValue(name, s)
	}
	if obj, ok := x.(map[string]any); ok {
		return ulimitObject(name, obj)
	}
	return nil, wantPair(kUlimits, name)
}

// runtimeItem reads a runtime's path, or daemon.json's object with one.
func runtimeItem(x any) (any, bool) {
	if s, ok := x.(string); ok && s != "" && !strings.ContainsAny(s, " \t") {
		return map[string]any{"path": s}, true
	}
	if obj, ok := x.(map[string]any); ok {
		if p, _ := obj["path"].(string); p != "" {
			return obj, true
		}
	}
	return nil, false
}

// ulimitObject reads {"Name":..,"Soft":..,"Hard":..} (daemon.json's form).
func ulimitObject(name string, x map[string]any) (any, error) {
	soft, okS := x["Soft"].(json.Number)
	hard, okH := x["Hard"].(json.Number)
	if n, hasName := x["Name"]; !okS || !okH || len(x) > 3 || (hasName && n != name) {
		return nil, fmt.Errorf("%s: want {\"Name\":%q,\"Soft\":N,\"Hard\":N}", name, name)
	}
	return ulimitValue(name, soft.String()+":"+hard.String())
}

// ulimitValue reads SOFT[:HARD] as dockerd's --default-ulimit does.
func ulimitValue(name, v string) (any, error) {
	if !ulimitNames[name] {
		return nil, fmt.Errorf("ulimit %q: want one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack", name)
	}
	s, h, twoValues := strings.Cut(v, ":")
	if !twoValues {
		h = s
	}
	soft, err1 := strconv.ParseInt(s, 10, 64)
	hard, err2 := strconv.ParseInt(h, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("ulimit %s=%s: want SOFT[:HARD] in whole numbers", name, v)
	}
	if soft > hard {
		return nil, fmt.Errorf("ulimit %s=%s: the soft limit is above the hard one", name, v)
	}
	return map[string]any{"Name": name, "Soft": soft, "Hard": hard}, nil
}

// poolValue reads base=CIDR,size=N (dockerd's --default-address-pool).
func poolValue(v string) ([]any, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "[") || strings.HasPrefix(strings.TrimSpace(v), "{") {
		return nil, fmt.Errorf("want base=CIDR,size=N (one pool a flag)")
	}
	base, size, err := poolFields(v)
	if err != nil {
		return nil, err
	}
	_, ipnet, err := net.ParseCIDR(base)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("want base=CIDR,size=N (base=10.10.0.0/16,size=24)")
	}
	ones, bits := ipnet.Mask.Size()
	if size < int64(ones) || size > int64(bits) {
		return nil, fmt.Errorf("size %d: want between %d and %d for %s", size, ones, bits, base)
	}
	return []any{map[string]any{"base": base, "size": size}}, nil
}

// poolFields reads base=CIDR,size=N's fields; size is -1 when not given.
func poolFields(v string) (base string, size int64, err error) {
	size = -1
	for _, f := range strings.Split(v, ",") {
		k, x, _ := strings.Cut(f, "=")
		switch k {
		case "base":
			base = x
		case "size":
			if size, err = strconv.ParseInt(x, 10, 64); err != nil {
				return "", 0, fmt.Errorf("size %q: want a prefix length", x)
			}
		default:
			return "", 0, fmt.Errorf("%q: want base=CIDR,size=N", f)
		}
	}
	return base, size, nil
}

// addOpt adds one key's value: lists append, maps merge (a name given twice
// is an error), anything else may be given once.
func addOpt(doc map[string]any, key string, val any) error {
	prev, dup := doc[key]
	if !dup {
		doc[key] = val
		return nil
	}
	switch p := prev.(type) {
	case []any:
		doc[key] = append(p, val.([]any)...)
		return nil
	case map[string]any:
		if daemonKeys[key] != kObject {
			for k, x := range val.(map[string]any) {
				if _, twice := p[k]; twice {
					return fmt.Errorf("%s %s is given twice", key, k)
				}
				p[k] = x
			}
			return nil
		}
	}
	return fmt.Errorf("%s is given twice", key)
}

// splitLists moves the keys that have flags of their own into the lists
// that merge with them, checked as those flags are.
func splitLists(doc map[string]any) (EngineConfig, error) {
	var c EngineConfig
	for key, check := range map[string]func(string) error{
		"labels":              func(s string) error { _, _, err := validate.Label(s); return err },
		"insecure-registries": validate.InsecureRegistry,
		"registry-mirrors":    validate.URL,
	} {
		l, _ := doc[key].([]any)
		delete(doc, key)
		for _, x := range l {
			s := x.(string)
			if err := check(s); err != nil {
				return EngineConfig{}, fmt.Errorf("--engine-opt %s: %w", key, err)
			}
			switch key {
			case "labels":
				c.Labels = append(c.Labels, s)
			case "insecure-registries":
				c.InsecureRegistries = append(c.InsecureRegistries, s)
			default:
				c.RegistryMirrors = append(c.RegistryMirrors, s)
			}
		}
	}
	if len(doc) > 0 {
		c.Defaults = doc
	}
	return c, nil
}

// suggestKey names the key that was probably meant.
func suggestKey(name string) string {
	var near []string
	for k := range daemonKeys {
		if strings.TrimSuffix(k, "s") == strings.TrimSuffix(name, "s") || strings.ReplaceAll(k, "-", "") == strings.ReplaceAll(name, "-", "") {
			near = append(near, k)
		}
	}
	if k := provision.DaemonKeyOfFlag(strings.TrimSuffix(name, "s")); k != strings.TrimSuffix(name, "s") {
		near = append(near, strings.TrimSuffix(name, "s"))
	}
	if len(near) == 0 {
		return ""
	}
	sort.Strings(near)
	return "; did you mean " + strings.Join(near, " or ") + "?"
}
