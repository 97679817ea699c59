package virtualbox

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// A VirtualBox 7.0 showvminfo --machinereadable, shortened: the stray
// Encryption line, quoted keys, escaped quotes, unquoted numbers, a NAT rule.
const showVMInfo70 = `name="n1"
Encryption:     disabled
groups="/"
ostype="Linux 2.6 / 3.x / 4.x / 5.x (64-bit)"
UUID="5b1b7a2e-0c1d-4b9a-8d2b-0a5e1f3c9d77"
CfgFile="/home/u/.machine/machines/n1/n1/n1.vbox"
memory=2048
cpus=2
cpuid=00000001,00000000,000306a9,00100800,7fbae3ff,bfebfbff
VMState="running"
VMStateChangeTime="2024-05-02T09:12:44.000000000"
"SATA-0-0"="/home/u/.machine/machines/n1/disk.vdi"
"SATA-ImageUUID-0-0"="1d8a1c3e-4f6b-4e1e-9c57-1f1f0c4a2b11"
natnet1="nat"
macaddress1="080027A1B2C3"
cableconnected1="on"
nic1="nat"
nictype1="82540EM"
nicspeed1="0"
mtu="0"
sockSnd="64"
Forwarding(0)="ssh,tcp,127.0.0.1,40022,,22"
Forwarding(1)="http,tcp,,8080,,80"
hostonly-network2="HostNetwork"
macaddress2="080027D4E5F6"
nic2="hostonlynetwork"
nic3="none"
description="say \"hi\" \\o/"
`

func TestParseVMInfo(t *testing.T) {
	info, err := parseVMInfo(showVMInfo70)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "n1" || info.UUID != "5b1b7a2e-0c1d-4b9a-8d2b-0a5e1f3c9d77" || info.State != "running" || info.CfgFile != "/home/u/.machine/machines/n1/n1/n1.vbox" {
		t.Errorf("info = %+v", info)
	}
	want := map[int]nicInfo{
		1: {Attachment: "nat", MAC: "080027A1B2C3"},
		2: {Attachment: "hostonlynetwork", MAC: "080027D4E5F6", Network: "HostNetwork"},
	}
	if !reflect.DeepEqual(info.NICs, want) {
		t.Errorf("NICs = %+v", info.NICs)
	}
	if f := info.Forwards["ssh"]; f.HostIP != "127.0.0.1" || f.HostPort != 40022 || f.GuestPort != 22 {
		t.Errorf("ssh rule = %+v", f)
	}
	if f := info.Forwards["http"]; f.HostIP != "" || f.HostPort != 8080 {
		t.Errorf("http rule = %+v", f)
	}
	kv := parseMachineReadable(showVMInfo70)
	if kv["SATA-0-0"] != "/home/u/.machine/machines/n1/disk.vdi" || kv["memory"] != "2048" || kv["description"] != `say "hi" \o/` {
		t.Errorf("machine-readable values: %q %q %q", kv["SATA-0-0"], kv["memory"], kv["description"])
	}
	if _, ok := kv["Encryption:     disabled"]; ok {
		t.Error("the Encryption line was read as a key")
	}
	if _, err := parseVMInfo("name=\"x\"\n"); err == nil {
		t.Error("output without UUID/VMState accepted")
	}
}

// list hostonlyifs on 6.1 (two interfaces) and list hostonlynets on 7.x
// (with the blank line VirtualBox prints after GUID).
func TestParseHostOnlyLists(t *testing.T) {
	ifs := parseHostOnlyIfs(`Name:            vboxnet0
GUID:            786f6276-656e-4074-8000-0a0027000000
DHCP:            Disabled
IPAddress:       192.168.56.1
NetworkMask:     255.255.255.0
IPV6Address:     fe80::800:27ff:fe00:0
IPV6NetworkMaskPrefixLength: 64
HardwareAddress: 0a:00:27:00:00:00
MediumType:      Ethernet
Wireless:        No
Status:          Up
VBoxNetworkName: HostInterfaceNetworking-vboxnet0

Name:            vboxnet1
GUID:            786f6276-656e-4174-8000-0a0027000001
DHCP:            Disabled
IPAddress:       192.168.99.1
NetworkMask:     255.255.255.0
IPV6Address:
IPV6NetworkMaskPrefixLength: 0
HardwareAddress: 0a:00:27:00:00:01
MediumType:      Ethernet
Wireless:        No
Status:          Down
VBoxNetworkName: HostInterfaceNetworking-vboxnet1

`)
	want := []hostOnlyIf{{"vboxnet0", "192.168.56.1", "255.255.255.0"}, {"vboxnet1", "192.168.99.1", "255.255.255.0"}}
	if !reflect.DeepEqual(ifs, want) {
		t.Errorf("hostonlyifs = %+v", ifs)
	}
	nets := parseHostOnlyNets(`Name:            HostNetwork
GUID:            f1e5c1b2-7a4f-4b1e-9d0a-3c2b1a0f9e8d

State:           Enabled
NetworkMask:     255.255.255.0
LowerIP:         192.168.56.1
UpperIP:         192.168.56.199
VBoxNetworkName: hostonly-HostNetwork

`)
	if len(nets) != 1 || nets[0].Name != "HostNetwork" || !nets[0].Enabled || nets[0].LowerIP != "192.168.56.1" || nets[0].UpperIP != "192.168.56.199" {
		t.Errorf("hostonlynets = %+v", nets)
	}
}

func TestParseGuestProperties(t *testing.T) {
	old := `Name: /VirtualBox/GuestInfo/Net/0/V4/IP, value: 10.0.2.15, timestamp: 1714641164000000000, flags: 
Name: /VirtualBox/GuestInfo/Net/1/V4/IP, value: 192.168.56.10, timestamp: 1714641164000000000, flags: 
Name: /VirtualBox/HostInfo/GUI/LanguageID, value: C, timestamp: 1714641164000000000, flags: RDONLYGUEST
`
	// VirtualBox 7.x, as printed in VirtualBox/virtualbox#403.
	modern := `/VirtualBox/GuestAdd/GuiOnFocus            = '0'                            @ 2025-11-20T14:12:13.813Z TRANSIENT, RDONLYGUEST
/VirtualBox/GuestAdd/Version               = '7.2.4'                        @ 2025-11-20T14:12:08.964Z
/VirtualBox/GuestInfo/Net/0/MAC            = '08002767E8B0'                 @ 2025-11-20T14:12:08.965Z
/VirtualBox/GuestInfo/Net/0/V4/IP          = '10.0.2.15'                    @ 2025-11-20T14:12:08.966Z
`
	for name, out := range map[string]string{"6.1": old, "7.x": modern} {
		p := parseGuestProperties(out)
		if p["/VirtualBox/GuestInfo/Net/0/V4/IP"] != "10.0.2.15" {
			t.Errorf("%s: properties = %v", name, p)
		}
	}
	if ips := guestIPv4s(parseGuestProperties(old)); !reflect.DeepEqual(ips, []string{"10.0.2.15", "192.168.56.10"}) {
		t.Errorf("guest IPs = %v", ips)
	}
	if p := parseGuestProperties("No properties found.\n"); len(p) != 0 {
		t.Errorf("no properties = %v", p)
	}
}

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]string{
		"6.1.50r161033\n":          "6.1.50",
		"7.1.4r165100\n":           "7.1.4",
		"7.0.14_Ubuntur161095\n":   "7.0.14",
		"6.1.38_Debianr153438\r\n": "6.1.38",
		"WARNING: The vboxdrv kernel module is not loaded. Either there is no module\n         available for the current kernel.\n\n6.1.50r161033\n": "6.1.50",
	} {
		v, err := parseVersion(out)
		if err != nil || v.String() != want {
			t.Errorf("parseVersion(%q) = %v, %v; want %s", out, v, err, want)
		}
	}
	if _, err := parseVersion("Oracle VM VirtualBox Command Line Management Interface\n"); err == nil {
		t.Error("no version accepted")
	}
	if !(version{Major: 7, Minor: 0}).atLeast(6, 1) || (version{Major: 6, Minor: 0}).atLeast(6, 1) {
		t.Error("atLeast")
	}
}

func TestParseSmallOutputs(t *testing.T) {
	if name, err := parseCreatedInterface("Interface 'vboxnet12' was successfully created\n"); err != nil || name != "vboxnet12" {
		t.Errorf("parseCreatedInterface = %q, %v", name, err)
	}
	if uuid, err := parseCreatedUUID("Virtual machine 'n1' is created and registered.\nUUID: 3e1b2f4a-1111-4222-8333-444455556666\nSettings file: '/x/n1/n1.vbox'\n"); err != nil || uuid != "3e1b2f4a-1111-4222-8333-444455556666" {
		t.Errorf("parseCreatedUUID = %q, %v", uuid, err)
	}
	if mb, err := parseCapacityMB("UUID:           x\nCapacity:       20480 MBytes\nSize on disk:   2 MBytes\n"); err != nil || mb != 20480 {
		t.Errorf("parseCapacityMB = %d, %v", mb, err)
	}
	vms := parseListVMs("\"n1\" {5b1b7a2e-0c1d-4b9a-8d2b-0a5e1f3c9d77}\n\"my \"odd\" vm\" {6c2c8b3f-0c1d-4b9a-8d2b-0a5e1f3c9d78}\n\"<inaccessible>\" {7d3d9c40-0c1d-4b9a-8d2b-0a5e1f3c9d79}\n")
	if vms["n1"] != "5b1b7a2e-0c1d-4b9a-8d2b-0a5e1f3c9d77" || vms[`my "odd" vm`] == "" || len(vms) != 3 {
		t.Errorf("parseListVMs = %v", vms)
	}
}

func TestCommandErrorClassification(t *testing.T) {
	accessDenied := &CommandError{Args: []string{"hostonlyif", "ipconfig"}, ExitCode: 1, Stderr: "VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\nVBoxManage: error: Context: \"EnableStaticIPConfig(Bstr(pszIp).raw(), Bstr(pszNetmask).raw())\" at line 242 of file VBoxManageHostonly.cpp\n"}
	notReadyErr := &CommandError{ExitCode: 1, Stderr: notReady}
	locked := &CommandError{ExitCode: 1, Stderr: "VBoxManage: error: The machine 'n1' is already locked by a session (or being locked or unlocked)\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports\n"}
	missing := &CommandError{ExitCode: 1, Stderr: "VBoxManage: error: Could not find a registered machine named 'n1'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports\n"}
	if !accessDenied.accessDenied() || accessDenied.transient() {
		t.Error("E_ACCESSDENIED on ipconfig: a refused range, not transient")
	}
	if notReadyErr.accessDenied() || !notReadyErr.transient() {
		t.Error("object not ready: transient, not a refused range")
	}
	if !locked.transient() || !missing.notFound() || missing.transient() {
		t.Error("locked / not found")
	}
	if got := missing.Error(); !strings.Contains(got, "Could not find a registered machine named 'n1'") || strings.Contains(got, "VBoxManage: error:") {
		t.Errorf("Error() = %q", got)
	}
}

// VirtualBox 7 set to Russian translates its listings' labels: they are
// read all the same.
func TestParseRussianListings(t *testing.T) {
	ifs := parseHostOnlyIfs("Имя:            vboxnet0\nGUID:            786f6276-656e-4074-8000-0a0027000000\nDHCP:            Отключено\nIP адрес:       192.168.56.1\nСетевая маска:     255.255.255.0\n")
	if len(ifs) != 1 || ifs[0] != (hostOnlyIf{Name: "vboxnet0", IP: "192.168.56.1", Netmask: "255.255.255.0"}) {
		t.Errorf("parseHostOnlyIfs = %+v", ifs)
	}
	nets := parseHostOnlyNets("Имя:            n\nGUID:            x\n\nСостояние:           Включено\nСетевая маска:     255.255.255.0\nНижний IP:         10.0.0.1\nВерхний IP:         10.0.0.9\n")
	if len(nets) != 1 || !nets[0].Enabled || nets[0].LowerIP != "10.0.0.1" || nets[0].UpperIP != "10.0.0.9" {
		t.Errorf("parseHostOnlyNets = %+v", nets)
	}
	if name, err := parseCreatedInterface("Интерфейс 'vboxnet3' успешно создан\n"); err != nil || name != "vboxnet3" {
		t.Errorf("parseCreatedInterface = %q, %v", name, err)
	}
	if mb, err := parseCapacityMB("Емкость:       2048 MB\n"); err != nil || mb != 2048 {
		t.Errorf("parseCapacityMB = %d, %v", mb, err)
	}
	if name, err := newInterface([]hostOnlyIf{{Name: "vboxnet0"}}, []hostOnlyIf{{Name: "vboxnet0"}, {Name: "vboxnet1"}}, "whatever"); err != nil || name != "vboxnet1" {
		t.Errorf("newInterface = %q, %v", name, err)
	}
}

func TestParseNetworksConfAndPlatforms(t *testing.T) {
	nets := parseNetworksConf("# comment\n* 10.0.0.0/8 192.168.0.0/16\n10.1.0.0/16\n*\tfd00::/8 bogus 172.16.0.0/12\n")
	var got []string
	for _, n := range nets {
		got = append(got, n.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.168.0.0/16 172.16.0.0/12" {
		t.Errorf("parseNetworksConf = %v", got)
	}
	if a := parsePlatformArchs("API version: 7_1\nSupported platform architectures: x86,ARMv8\n\n"); strings.Join(a, "|") != "x86|ARMv8" {
		t.Errorf("parsePlatformArchs = %v", a)
	}
	if a := parsePlatformArchs("API version: 7_0\n"); a != nil {
		t.Errorf("parsePlatformArchs on 7.0 = %v", a)
	}
}

func TestRetryable(t *testing.T) {
	o := defaultOptions()
	o.retries, o.lockWait = 2, time.Second
	locked := &CommandError{Args: []string{"unregistervm", "n1"}, Stderr: "VBoxManage: error: Невозможно отменить регистрацию машины 'n1' пока она заблокирована\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap\n"}
	denied := &CommandError{Args: []string{"hostonlyif", "ipconfig", "vboxnet0"}, Stderr: "VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\n"}
	notReadyRu := &CommandError{Args: []string{"showvminfo", "n1"}, Stderr: "VBoxManage: error: Объект не готов\nVBoxManage: error: Details: code E_ACCESSDENIED (0x80070005), component SessionMachine\n"}
	for _, tc := range []struct {
		ce      *CommandError
		attempt int
		elapsed time.Duration
		want    bool
	}{
		{locked, 10, 500 * time.Millisecond, true},
		{locked, 0, 2 * time.Second, false},
		{denied, 0, 0, false},
		{notReadyRu, 1, 0, true},
		{notReadyRu, 2, 0, false},
	} {
		if got := retryable(tc.ce, tc.attempt, tc.elapsed, o); got != tc.want {
			t.Errorf("retryable(%v, %d, %s) = %v", tc.ce.Args, tc.attempt, tc.elapsed, got)
		}
	}
	if !denied.accessDenied() || notReadyRu.accessDenied() {
		t.Error("accessDenied")
	}
}
