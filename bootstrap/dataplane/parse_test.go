package dataplane

import (
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseFacts(t *testing.T) {
	out := `ipvs=0
vxlan=1
br_netfilter=1
bridge_nf=1
iptables_mode=nf_tables
iptables_legacy=3
iptables_nft=12
iface=eth0
mtu=1300
driver=vmxnet3
tx_checksum=on
firewalld=1
zone=public
zone_target=default
zone_ports=7946/tcp 4789/udp
zone_services=ssh dhcpv6-client
virt=lxc
net=192.168.1.5/24 eth0
net=192.168.1.0/24 eth0
net=172.17.0.1/16 docker0
net=127.0.0.1/8 lo
net=10.8.0.1 wg0
ip=192.168.1.5 eth0
ip=127.0.0.1 lo
ip=172.17.0.1 docker0
ip=fd00::5 eth0
ip=not-an-address eth0
closed=192.168.1.7:7946
gossip_id=2ee6c0fe9983
gossip_udp_to=7975bf9f9d80
gossip_udp_to=NOT-HEX
gossip_udp_to=
neigh_entries=1020
neigh_max=1024
garbage line
`
	f := ParseFacts("w1", out)
	want := Facts{Node: "w1", Read: true, VXLAN: true, BrNetfilter: true, BridgeNFCall: "1", IptablesMode: "nf_tables", IptablesLegacy: 3, IptablesNft: 12,
		Iface: "eth0", MTU: 1300, Driver: "vmxnet3", TxChecksum: true, Firewalld: true, Zone: "public", ZoneTarget: "default",
		ZonePorts: []string{"7946/tcp", "4789/udp"}, ZoneServices: []string{"ssh", "dhcpv6-client"}, Virt: "lxc",
		Nets:   []HostNet{{Prefix: "192.168.1.0/24", Dev: "eth0"}, {Prefix: "10.8.0.1/32", Dev: "wg0"}},
		Addrs:  []string{"192.168.1.5", "fd00::5"},
		Closed: []string{"192.168.1.7:7946"}, GossipID: "2ee6c0fe9983", GossipUDPTo: []string{"7975bf9f9d80"},
		NeighEntries: 1020, NeighMax: 1024}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
}

// The script is valid sh, quotes the address it is given, and prints
// facts a parser reads (run locally: no root needed for most lines).
func TestFactsScriptRuns(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := FactsScript("127.0.0.1'; echo pwned=1; '", []Target{{Addr: "127.0.0.1", Port: 1}})
	out, err := exec.Command(sh, "-c", script).Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(string(out), "pwned=1") {
		t.Fatalf("the address ran as a command:\n%s", out)
	}
	f := ParseFacts("local", string(out))
	if !f.Read || !strings.Contains(string(out), "ipvs=") || len(f.Addrs) == 0 && strings.Contains(string(out), "net=") {
		t.Errorf("no facts:\n%s", out)
	}
	// The ARP table's limit, where this namespace shows it.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/neigh/default/gc_thresh3"); err == nil {
		if want, _ := strconv.Atoi(strings.TrimSpace(string(b))); f.NeighMax != want || f.NeighEntries <= 0 {
			t.Errorf("ARP table: %d entries of %d, want some of %d", f.NeighEntries, f.NeighMax, want)
		}
	}
}

func TestParseResultAndCells(t *testing.T) {
	log := "T 3\nR 10.0.1.3 small ok\nR 10.0.1.3 big ok\nR 10.0.1.4 small ok\nR 10.0.1.4 big fail\nR bad small ok\nR 10.0.1.9 small maybe\nR 10.0.1.9 huge ok\nS 3\nDONE\n"
	r := ParseResult(log)
	if !r.Done || r.Listed != 3 || r.Named != 3 || len(r.Peers) != 2 {
		t.Fatalf("%+v", r)
	}
	addrs := map[string]netip.Addr{"a": netip.MustParseAddr("10.0.1.2"), "b": netip.MustParseAddr("10.0.1.3"), "c": netip.MustParseAddr("10.0.1.4")}
	results := map[string]Result{"a": r, "b": ParseResult("T 2\nS 2\nDONE\n"), "c": ParseResult("T 3\n")}
	mx := Cells([]string{"a", "b", "c"}, results, addrs, nil)
	cells, dns := mx.Cells, mx.DNS
	want := []Cell{{"a", "b", OK, OK, ""}, {"a", "c", OK, Failed, ""}, {"b", "a", Failed, Failed, ""}, {"b", "c", Failed, Failed, ""}}
	if !reflect.DeepEqual(cells, want) {
		t.Errorf("cells %+v\nwant %+v", cells, want)
	}
	if dns["a"] != "" || !strings.Contains(dns["b"], "listed 2 of 3") {
		t.Errorf("dns %+v", dns)
	}
	if _, ok := dns["c"]; ok {
		t.Errorf("a node not done has no DNS verdict: %+v", dns)
	}
	if mx.VIP != nil {
		t.Errorf("VIPs not tested, yet the matrix has %v", mx.VIP)
	}
}

// TestParseVIPAndMesh: the V and M lines of a task that tested the VIP
// and the routing mesh, and the cells they make; a node's address the
// task printed nothing for is a failed mesh.
func TestParseVIPAndMesh(t *testing.T) {
	a := "T 2\nR 10.0.1.3 small ok\nR 10.0.1.3 big ok\nS 2\nV ok\nM 192.168.5.3 ok\nM 192.168.5.2 ok\nM nonsense ok\nM 192.168.5.9 perhaps\nDONE\n"
	b := "T 2\nR 10.0.1.2 small ok\nR 10.0.1.2 big ok\nS 2\nV fail\nDONE\n"
	ra := ParseResult(a)
	if ra.VIP != OK || len(ra.Mesh) != 2 || ra.Mesh[netip.MustParseAddr("192.168.5.3")] != OK {
		t.Fatalf("parsed %+v", ra)
	}
	addrs := map[string]netip.Addr{"a": netip.MustParseAddr("10.0.1.2"), "b": netip.MustParseAddr("10.0.1.3")}
	hosts := map[string]netip.Addr{"a": netip.MustParseAddr("192.168.5.2"), "b": netip.MustParseAddr("192.168.5.3")}
	mx := Cells([]string{"a", "b"}, map[string]Result{"a": ra, "b": ParseResult(b)}, addrs, hosts)
	want := []Cell{{"a", "b", OK, OK, OK}, {"b", "a", OK, OK, Failed}}
	if !reflect.DeepEqual(mx.Cells, want) {
		t.Errorf("cells %+v\nwant %+v", mx.Cells, want)
	}
	if !reflect.DeepEqual(mx.VIP, map[string]string{"a": OK, "b": Failed}) {
		t.Errorf("vip %v", mx.VIP)
	}
	if Clean(mx) {
		t.Error("a failed VIP and mesh called clean")
	}
}

func FuzzParseFacts(f *testing.F) {
	f.Add("ipvs=1\nmtu=1500\nnet=10.0.0.0/8 eth0\nclosed=1.2.3.4:7946\n")
	f.Add("net=::1 lo\nnet=x\nzone_ports=\n")
	f.Add("gossip_id=2ee6c0fe9983\ngossip_udp_to=7975bf9f9d80\ngossip_udp_to=../../x\n")
	f.Fuzz(func(t *testing.T, s string) {
		fs := ParseFacts("n", s)
		for _, n := range fs.Nets {
			if _, err := netip.ParsePrefix(n.Prefix); err != nil {
				t.Fatalf("kept a net that is not a prefix: %q", n.Prefix)
			}
		}
		for _, id := range append([]string{fs.GossipID}, fs.GossipUDPTo...) {
			if id != "" && !gossipName(id) {
				t.Fatalf("kept a gossip name that is not hex: %q", id)
			}
		}
		Verdict(Input{Nodes: []string{"n"}, Facts: map[string]Facts{"n": fs}, Pools: []string{"10.0.0.0/8"}})
	})
}

func FuzzParseResult(f *testing.F) {
	f.Add("T 3\nR 10.0.1.3 small ok\nS 3\nDONE\n")
	f.Add("R ::1 big fail\nT 99999999999\n")
	f.Add("V ok\nM 192.168.5.3 fail\nM ::1 ok\nV maybe\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseResult(s)
		for _, v := range r.Peers {
			if (v[0] != "" && !okOrFail(v[0])) || (v[1] != "" && !okOrFail(v[1])) {
				t.Fatalf("kept %v", v)
			}
		}
		for a, v := range r.Mesh {
			if !okOrFail(v) || !a.IsValid() {
				t.Fatalf("kept mesh %v %q", a, v)
			}
		}
		if r.VIP != Skipped && !okOrFail(r.VIP) {
			t.Fatalf("kept vip %q", r.VIP)
		}
	})
}

func TestClean(t *testing.T) {
	ok := Matrix{Cells: []Cell{{"a", "b", OK, OK, ""}}, DNS: map[string]string{"a": ""}}
	if !Clean(ok) {
		t.Errorf("clean matrix: %+v", ok)
	}
	for _, bad := range []Matrix{
		{Cells: []Cell{{"a", "b", OK, Failed, ""}}},
		{Cells: []Cell{{"a", "b", OK, OK, ""}}, DNS: map[string]string{"a": "listed 1 of 2"}},
		{Cells: []Cell{{"a", "b", OK, OK, Failed}}},
		{Cells: []Cell{{"a", "b", OK, OK, OK}}, VIP: map[string]string{"a": Failed}},
		{Missing: map[string]string{"c": "no image"}},
	} {
		if Clean(bad) {
			t.Errorf("not clean: %+v", bad)
		}
	}
}
