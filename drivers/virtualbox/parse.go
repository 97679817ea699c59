package virtualbox

import (
	"bufio"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// This file reads what VBoxManage prints. Every parser skips what it does
// not understand: VirtualBox adds lines between releases, and 7.0 prints a
// stray "Encryption:     disabled" in --machinereadable output.

// parseMachineReadable reads `showvminfo --machinereadable`: key=value
// lines, keys and string values in double quotes with \" and \\ escaped.
func parseMachineReadable(out string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		key, rest, ok := cutKey(line)
		if !ok {
			continue
		}
		kv[key] = unquote(rest)
	}
	return kv
}

// cutKey splits a machine-readable line at the '=' that ends its key.
func cutKey(line string) (key, rest string, ok bool) {
	if strings.HasPrefix(line, `"`) {
		end := strings.Index(line[1:], `"=`)
		if end < 0 {
			return "", "", false
		}
		return line[1 : end+1], line[end+3:], true
	}
	key, rest, ok = strings.Cut(line, "=")
	if !ok || key == "" || strings.ContainsAny(key, " \t") {
		return "", "", false
	}
	return key, rest, true
}

func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// vmInfo is what the driver needs of showvminfo.
type vmInfo struct {
	Name    string
	UUID    string
	State   string // VMState: running, poweroff, aborted, saved, paused, ...
	CfgFile string
	NICs    map[int]nicInfo
	// Forwards are NIC 1's NAT rules, by name.
	Forwards map[string]forward
}

type nicInfo struct {
	Attachment string // nat, hostonly, hostonlynetwork, none
	MAC        string // 12 hex digits
	Network    string // host-only adapter or network
}

// forward is a NAT rule: name,proto,hostip,hostport,guestip,guestport.
type forward struct {
	Name, Proto, HostIP string
	HostPort            int
	GuestIP             string
	GuestPort           int
}

func parseForward(s string) (forward, error) {
	p := strings.Split(s, ",")
	if len(p) != 6 {
		return forward{}, fmt.Errorf("NAT rule %q: want 6 fields", s)
	}
	hp, err := strconv.Atoi(p[3])
	if err != nil {
		return forward{}, fmt.Errorf("NAT rule %q: host port: %w", s, err)
	}
	gp, err := strconv.Atoi(p[5])
	if err != nil {
		return forward{}, fmt.Errorf("NAT rule %q: guest port: %w", s, err)
	}
	return forward{Name: p[0], Proto: p[1], HostIP: p[2], HostPort: hp, GuestIP: p[4], GuestPort: gp}, nil
}

func parseVMInfo(out string) (*vmInfo, error) {
	kv := parseMachineReadable(out)
	info := &vmInfo{
		Name:     kv["name"],
		UUID:     kv["UUID"],
		State:    kv["VMState"],
		CfgFile:  kv["CfgFile"],
		NICs:     map[int]nicInfo{},
		Forwards: map[string]forward{},
	}
	if info.UUID == "" || info.State == "" {
		return nil, fmt.Errorf("showvminfo output has no UUID or VMState")
	}
	for i := 1; i <= 8; i++ {
		if n, ok := parseNIC(kv, i); ok {
			info.NICs[i] = n
		}
	}
	for i := 0; ; i++ {
		v, ok := kv[fmt.Sprintf("Forwarding(%d)", i)]
		if !ok {
			break
		}
		f, err := parseForward(v)
		if err != nil {
			return nil, err
		}
		info.Forwards[f.Name] = f
	}
	return info, nil
}

// parseNIC reads NIC i of showvminfo's listing; false when it has none.
func parseNIC(kv map[string]string, i int) (nicInfo, bool) {
	att, ok := kv[fmt.Sprintf("nic%d", i)]
	if !ok || att == "none" {
		return nicInfo{}, false
	}
	n := nicInfo{Attachment: att, MAC: kv[fmt.Sprintf("macaddress%d", i)]}
	switch att {
	case "hostonly":
		n.Network = kv[fmt.Sprintf("hostonlyadapter%d", i)]
	case "hostonlynetwork":
		n.Network = kv[fmt.Sprintf("hostonly-network%d", i)]
	}
	return n, true
}

// ruLabels maps the Russian labels and values of VBoxManage's listings to
// the English ones. VirtualBox 7 translates them (VBoxManageList.cpp; the
// texts are those of VBoxManageNls_ru.ts, VBoxManage's only translation)
// when its own language setting says so, which LC_ALL does not override.
var ruLabels = map[string]string{
	"Имя":           "Name",
	"IP адрес":      "IPAddress",
	"Сетевая маска": "NetworkMask",
	"Состояние":     "State",
	"Нижний IP":     "LowerIP",
	"Верхний IP":    "UpperIP",
	"Емкость":       "Capacity",
	"Включено":      "Enabled",
	"Отключено":     "Disabled",
}

func english(s string) string {
	if e, ok := ruLabels[s]; ok {
		return e
	}
	return s
}

// parseRecords reads the "Key:   value" listings (list hostonlyifs, list
// hostonlynets): a record starts at each "Name:" line. Blank lines do not
// end records: list hostonlynets prints one inside each.
func parseRecords(out string) []map[string]string {
	var recs []map[string]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = english(strings.TrimSpace(k)), english(strings.TrimSpace(v))
		if k == "Name" {
			recs = append(recs, map[string]string{})
		}
		if len(recs) > 0 {
			recs[len(recs)-1][k] = v
		}
	}
	return recs
}

// hostOnlyIf is a row of `list hostonlyifs`.
type hostOnlyIf struct {
	Name, IP, Netmask string
}

func parseHostOnlyIfs(out string) []hostOnlyIf {
	var ifs []hostOnlyIf
	for _, r := range parseRecords(out) {
		ifs = append(ifs, hostOnlyIf{Name: r["Name"], IP: r["IPAddress"], Netmask: r["NetworkMask"]})
	}
	return ifs
}

// hostOnlyNet is a row of `list hostonlynets` (VirtualBox 7 on macOS).
type hostOnlyNet struct {
	Name, Netmask, LowerIP, UpperIP string
	Enabled                         bool
}

func parseHostOnlyNets(out string) []hostOnlyNet {
	var nets []hostOnlyNet
	for _, r := range parseRecords(out) {
		nets = append(nets, hostOnlyNet{
			Name: r["Name"], Netmask: r["NetworkMask"], LowerIP: r["LowerIP"], UpperIP: r["UpperIP"],
			Enabled: r["State"] == "Enabled",
		})
	}
	return nets
}

// parsePlatformArchs reads the platforms `list systemproperties` says
// VirtualBox 7.1+ runs ("x86", "ARMv8"); the line is printed untranslated.
func parsePlatformArchs(out string) []string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Supported platform architectures:"); ok {
			var archs []string
			for _, a := range strings.Split(rest, ",") {
				if a = strings.TrimSpace(a); a != "" {
					archs = append(archs, a)
				}
			}
			return archs
		}
	}
	return nil
}

var reListVM = regexp.MustCompile(`^"(.*)" \{([0-9a-fA-F-]+)\}$`)

// parseListVMs reads `list vms`: "name" {uuid} per line, by name.
func parseListVMs(out string) map[string]string {
	vms := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if m := reListVM.FindStringSubmatch(strings.TrimRight(line, "\r")); m != nil {
			vms[m[1]] = m[2]
		}
	}
	return vms
}

var (
	// 6.1, and 7.x with --old-format.
	reGuestPropOld = regexp.MustCompile(`^Name: (.*), value: (.*), timestamp: \d+, flags: ?(.*)$`)
	// 7.x: name padded, '=', the value in single quotes, then "@ time" and flags.
	reGuestPropNew = regexp.MustCompile(`^(\S+)\s+= '(.*)'(?:\s+@ \S+.*)?\s*$`)
)

// parseGuestProperties reads `guestproperty enumerate` in either format.
func parseGuestProperties(out string) map[string]string {
	props := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := reGuestPropOld.FindStringSubmatch(line); m != nil {
			props[m[1]] = m[2]
		} else if m := reGuestPropNew.FindStringSubmatch(line); m != nil {
			props[m[1]] = m[2]
		}
	}
	return props
}

// guestIPv4s lists the IPv4 addresses the Guest Additions report, sorted.
func guestIPv4s(props map[string]string) []string {
	var ips []string
	for k, v := range props {
		if strings.HasPrefix(k, "/VirtualBox/GuestInfo/Net/") && strings.HasSuffix(k, "/V4/IP") && v != "" {
			ips = append(ips, v)
		}
	}
	sort.Strings(ips)
	return ips
}

// In English "Capacity: N MBytes", in Russian "Емкость: N MB".
var reCapacity = regexp.MustCompile(`(?m)^(?:Capacity|Емкость):\s+(\d+) MB`)

// parseCapacityMB reads the capacity from `showmediuminfo`.
func parseCapacityMB(out string) (int, error) {
	m := reCapacity.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("showmediuminfo output has no Capacity line")
	}
	return strconv.Atoi(m[1])
}

// In English and in Russian (VBoxManageNls_ru.ts).
var reCreatedIf = regexp.MustCompile(`(?:Interface|Интерфейс) '([^']+)' (?:was successfully created|успешно создан)`)

// parseCreatedInterface reads the name from `hostonlyif create`.
func parseCreatedInterface(out string) (string, error) {
	m := reCreatedIf.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("hostonlyif create did not name the interface it made: %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

var reUUID = regexp.MustCompile(`(?m)^UUID:\s+([0-9a-fA-F-]+)`)

// parseCreatedUUID reads the new VM's UUID from `createvm`.
func parseCreatedUUID(out string) (string, error) {
	m := reUUID.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("createvm did not print the new VM's UUID: %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

// version is a VirtualBox release.
type version struct {
	Major, Minor, Patch int
	Raw                 string
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

func (v version) atLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Distribution builds add a suffix: 6.1.38_Debianr153438, 7.0.14_Ubuntur161095.
var reVersion = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)\S*$`)

// parseVersion reads `VBoxManage --version`. The version is the last line
// that looks like one: on Linux a warning about the vboxdrv kernel module
// may come first.
func parseVersion(out string) (version, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		m := reVersion.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var v version
		v.Major, _ = strconv.Atoi(m[1])
		v.Minor, _ = strconv.Atoi(m[2])
		v.Patch, _ = strconv.Atoi(m[3])
		v.Raw = line
		return v, nil
	}
	return version{}, fmt.Errorf("cannot read a version in %q", strings.TrimSpace(out))
}
