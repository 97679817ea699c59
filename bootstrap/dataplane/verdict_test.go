package dataplane

import (
	"fmt"
	"strings"
	"testing"
)

var nodes3 = []string{"m1", "w1", "w2"}

// good is a node whose facts are all fine.
func good(n string) Facts {
	return Facts{Node: n, Read: true, IPVS: true, VXLAN: true, BrNetfilter: true, BridgeNFCall: "1", IptablesMode: "nf_tables", IptablesNft: 10,
		Iface: "eth0", MTU: 1500, Driver: "virtio_net", Nets: []HostNet{{Prefix: "192.168.1.0/24", Dev: "eth0"}}}
}

// input is three healthy nodes with a full matrix; edit applies a case.
func input(edit func(*Input)) Input {
	in := Input{Nodes: nodes3, Addrs: map[string]string{"m1": "192.168.1.1", "w1": "192.168.1.2", "w2": "192.168.1.3"},
		Managers: map[string]bool{"m1": true}, Facts: map[string]Facts{}, Pools: []string{"10.0.0.0/8"}}
	for _, n := range nodes3 {
		in.Facts[n] = good(n)
	}
	for _, a := range nodes3 {
		for _, b := range nodes3 {
			if a != b {
				in.Matrix.Cells = append(in.Matrix.Cells, Cell{From: a, To: b, Small: OK, Big: OK})
			}
		}
	}
	if edit != nil {
		edit(&in)
	}
	return in
}

func facts(in *Input, n string, f func(*Facts)) {
	x := in.Facts[n]
	f(&x)
	in.Facts[n] = x
}

// failCells marks the cells touching node (both ways) small or big.
func failCells(in *Input, node string, small bool) {
	for i, c := range in.Matrix.Cells {
		if c.From == node || c.To == node {
			if small {
				in.Matrix.Cells[i].Small, in.Matrix.Cells[i].Big = Failed, Failed
			} else {
				in.Matrix.Cells[i].Big = Failed
			}
		}
	}
}

// gossip gives each node a gossip ID (id-NODE as hex: the node's index)
// and the peers its gossip reached over TCP only.
func gossip(in *Input, udpTo map[string][]string) {
	ids := map[string]string{}
	for i, n := range in.Nodes {
		ids[n] = fmt.Sprintf("%x", 0xa0+i)
		facts(in, n, func(f *Facts) { f.GossipID = ids[n] })
	}
	for n, peers := range udpTo {
		facts(in, n, func(f *Facts) {
			for _, p := range peers {
				f.GossipUDPTo = append(f.GossipUDPTo, ids[p])
			}
		})
	}
}

// meshAll marks the VIP and routing mesh tested with result r everywhere.
func meshAll(in *Input, r string) {
	in.Matrix.VIP, in.Matrix.MeshPort = map[string]string{}, 30001
	for _, n := range in.Nodes {
		in.Matrix.VIP[n] = r
	}
	for i := range in.Matrix.Cells {
		in.Matrix.Cells[i].Mesh = r
	}
}

// meshTo marks the routing mesh at node as r from every peer.
func meshTo(in *Input, node, r string) {
	for i, c := range in.Matrix.Cells {
		if c.To == node {
			in.Matrix.Cells[i].Mesh = r
		}
	}
}

type want struct {
	kind, node, peer, check string
	cause                   []string // substrings of the cause and fix
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		ok   bool
		want []want
	}{
		{"healthy", input(nil), true, nil},
		{"healthy with the VIP and the routing mesh tested", input(func(in *Input) { meshAll(in, OK) }), true, nil},
		{"7946/udp dropped on w2: everyone names w2, w2 names everyone; w2 alone, and no DNS or 4789 blame on top", input(func(in *Input) {
			gossip(in, map[string][]string{"m1": {"w2"}, "w1": {"w2"}, "w2": {"m1", "w1"}})
			failCells(in, "w2", true)
			in.Matrix.DNS = map[string]string{"w2": "tasks.SERVICE listed 2 of 3 tasks"}
		}), false, []want{{Fault, "w2", "", "7946/udp", []string{"7946/udp is dropped on w2", "TCP only", "open 7946/udp on w2"}}}},
		{"7946/udp dropped on w1, seen in a short window: w1 names everyone, only m1 names w1 yet: w1", input(func(in *Input) {
			gossip(in, map[string][]string{"m1": {"w1"}, "w1": {"m1", "w2"}})
		}), false, []want{{Fault, "w1", "", "7946/udp", []string{"7946/udp is dropped on w1"}}}},
		{"7946/udp lost between two nodes only: each names the other", input(func(in *Input) {
			gossip(in, map[string][]string{"m1": {"w1"}, "w1": {"m1"}})
		}), false, []want{{Fault, "m1", "", "7946/udp", []string{"gossip from m1 reaches w1 over TCP only"}},
			{Fault, "w1", "", "7946/udp", []string{"gossip from w1 reaches m1 over TCP only"}}}},
		{"a gossip name no node has is said as it is", input(func(in *Input) {
			gossip(in, map[string][]string{"m1": {"w1"}})
			facts(in, "m1", func(f *Facts) { f.GossipUDPTo = []string{"abc123"} })
		}), false, []want{{Fault, "m1", "", "7946/udp", []string{"reaches gossip node abc123 over TCP only"}}}},
		{"VIP fails on one node: that node", input(func(in *Input) { meshAll(in, OK); in.Matrix.VIP["w1"] = Failed }), false,
			[]want{{Fault, "w1", "", "vip", []string{"virtual IP does not answer from tasks on w1", "ip_vs_rr"}}}},
		{"VIP fails everywhere: one fault of the swarm", input(func(in *Input) {
			meshAll(in, OK)
			for n := range in.Matrix.VIP {
				in.Matrix.VIP[n] = Failed
			}
		}), false, []want{{Fault, "", "", "vip", []string{"answers on no node", "one backend"}}}},
		{"no peer gets through w2's routing mesh: w2", input(func(in *Input) {
			meshAll(in, OK)
			meshTo(in, "w2", Failed)
		}), false, []want{{Fault, "w2", "", "routing-mesh", []string{"routing mesh on w2 does not answer", "30001/tcp", "FORWARD"}}}},
		{"one pair's routing mesh fails: the pair", input(func(in *Input) {
			meshAll(in, OK)
			for i, c := range in.Matrix.Cells {
				if c.From == "m1" && c.To == "w1" {
					in.Matrix.Cells[i].Mesh = Failed
				}
			}
		}), false, []want{{Fault, "m1", "w1", "routing-mesh", []string{"from m1, the port 30001/tcp published at w1"}}}},
		{"the overlay to w2 is down: its VIP and mesh are not blamed again", input(func(in *Input) {
			meshAll(in, OK)
			failCells(in, "w2", true)
			meshTo(in, "w2", Failed)
			in.Matrix.VIP["w2"] = Failed
		}), false, []want{{Fault, "w2", "", "4789/udp", []string{"4789/udp (VXLAN) is dropped on w2"}}}},
		{"no IP_VS anywhere is a limit", input(func(in *Input) {
			for _, n := range nodes3 {
				facts(in, n, func(f *Facts) { f.IPVS = false })
			}
		}), true, []want{{Limit, "", "", "ipvs", []string{"this kernel has no IP_VS: service VIPs and the routing mesh cannot work on any node", "endpoint_mode: dnsrr", "mode: host"}}}},
		{"LXC without IP_VS says where the kernel is", input(func(in *Input) {
			for _, n := range nodes3 {
				facts(in, n, func(f *Facts) { f.IPVS, f.Virt = false, "lxc" })
			}
		}), true, []want{{Limit, "", "", "ipvs", []string{"a lxc container uses its host's kernel"}}}},
		{"OpenVZ and WSL too", input(func(in *Input) {
			for _, n := range nodes3 {
				facts(in, n, func(f *Facts) { f.IPVS, f.Virt = false, "openvz" })
			}
			facts(in, "w2", func(f *Facts) { f.Virt = "wsl" })
		}), true, []want{{Limit, "", "", "ipvs", []string{"m1, w1, w2", "container uses its host's kernel"}}}},
		{"IP_VS missing on one node is a fault there", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.IPVS = false })
		}), false, []want{{Fault, "w1", "", "ipvs", []string{"ip_vs is not loaded on w1", "modprobe ip_vs"}}}},
		{"link MTU below VXLAN's needs", input(func(in *Input) {
			facts(in, "w2", func(f *Facts) { f.MTU = 1400 })
			failCells(in, "w2", false)
		}), false, []want{{Fault, "w2", "", "mtu", []string{"w2's eth0 MTU is 1400: overlay packets over 1350 bytes are lost", "swarm { overlay_mtu = 1350 }"}}}},
		{"full-size packets lost, link MTU fine: the path", input(func(in *Input) { failCells(in, "w1", false) }), false,
			[]want{{Fault, "w1", "", "mtu", []string{"packets of 1450 bytes", "overlay_mtu"}}}},
		{"overlay MTU set to fit", input(func(in *Input) {
			in.OverlayMTU = 1350
			facts(in, "w2", func(f *Facts) { f.MTU = 1400 })
		}), true, nil},
		{"4789 dropped on one node names it alone", input(func(in *Input) { failCells(in, "w2", true) }), false,
			[]want{{Fault, "w2", "", "4789/udp", []string{"4789/udp (VXLAN) is dropped on w2", "let shoal manage the firewall"}}}},
		{"an engine at its old address is named, not 4789", input(func(in *Input) {
			in.Advertised = map[string]string{"m1": "192.168.1.1", "w1": "192.168.1.2", "w2": "192.168.1.3"}
			for n, a := range map[string]string{"m1": "192.168.1.1", "w1": "192.168.1.2", "w2": "192.168.1.9"} {
				facts(in, n, func(f *Facts) { f.Addrs = []string{a} })
			}
			failCells(in, "w2", true)
			in.Matrix.DNS = map[string]string{"m1": "tasks.SERVICE listed 2 of 3 tasks", "w2": "tasks.SERVICE listed 1 of 3 tasks"}
		}), false, []want{{Fault, "w2", "", "address", []string{"w2's engine advertises 192.168.1.3, an address the host no longer has (it has 192.168.1.9)", "run 'cluster up'"}}}},
		{"engine and host agree", input(func(in *Input) {
			in.Advertised = map[string]string{"w2": "192.168.1.3"}
			facts(in, "w2", func(f *Facts) { f.Addrs = []string{"10.0.2.15", "192.168.1.3"} })
		}), true, nil},
		{"host addresses unknown: nothing said", input(func(in *Input) {
			in.Advertised = map[string]string{"w2": "192.168.1.3"}
		}), true, nil},
		{"data path port moved", input(func(in *Input) { in.DataPathPort = 4790; failCells(in, "w2", true) }), false,
			[]want{{Fault, "w2", "", "4790/udp", []string{"4790/udp"}}}},
		{"ARP table near its limit: a warning while it works", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.NeighEntries, f.NeighMax = 1000, 1024 })
			facts(in, "w2", func(f *Facts) { f.NeighEntries, f.NeighMax = 800, 1024 })
		}), true, []want{{Warning, "w1", "", "arp-table", []string{"1000 entries of at most 1024", "gc_thresh3"}}}},
		{"ARP table limit unknown (a container's namespace): nothing said", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.NeighEntries = 5000 })
		}), true, nil},
		{"vmxnet3 offload: a warning while it works", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Driver, f.TxChecksum = "vmxnet3", true })
		}), true, []want{{Warning, "w1", "", "offload", []string{"vmxnet3", "tx-checksum-ip-generic off", "data_path_port = 4790"}}}},
		{"vmxnet3 offload with VXLAN lost: the hint", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Driver, f.TxChecksum = "vmxnet3", true })
			failCells(in, "w1", true)
		}), false, []want{
			{Fault, "w1", "", "4789/udp", []string{"vmxnet3 NIC has tx checksum offload on"}},
			{Warning, "w1", "", "offload", nil}}},
		{"vmxnet3 offload off", input(func(in *Input) { facts(in, "w1", func(f *Facts) { f.Driver = "vmxnet3" }) }), true, nil},
		{"iptables legacy and nft mixed", input(func(in *Input) {
			facts(in, "m1", func(f *Facts) { f.IptablesLegacy = 4 })
		}), true, []want{{Warning, "m1", "", "iptables", []string{"iptables-legacy (4) and iptables-nft (10)", "one backend"}}}},
		{"firewalld without the ports", input(func(in *Input) {
			facts(in, "m1", func(f *Facts) { f.Firewalld, f.Zone, f.ZonePorts = true, "public", []string{"7946/tcp"} })
		}), false, []want{{Fault, "m1", "", "firewalld", []string{`zone "public" (of eth0) does not open 4789/udp, 7946/udp, 2377/tcp`, "--add-port=4789/udp --add-port=7946/udp --add-port=2377/tcp"}}}},
		{"firewalld with the docker-swarm service", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Firewalld, f.Zone, f.ZoneServices = true, "public", []string{"ssh", "docker-swarm"} })
		}), true, nil},
		{"firewalld, trusted zone", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Firewalld, f.Zone = true, "trusted" })
		}), true, nil},
		{"firewalld named, not blamed twice", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Firewalld, f.Zone = true, "public" })
			failCells(in, "w1", true)
		}), false, []want{{Fault, "w1", "", "firewalld", []string{"4789/udp, 7946/tcp, 7946/udp"}}}},
		{"address pool overlaps a host route", input(func(in *Input) {
			facts(in, "w2", func(f *Facts) { f.Nets = append(f.Nets, HostNet{Prefix: "10.20.0.0/16", Dev: "wg0"}) })
		}), true, []want{{Warning, "w2", "", "address-pool", []string{"pool 10.0.0.0/8 overlaps w2's network 10.20.0.0/16 (wg0)", "default_addr_pool"}}}},
		{"7946 closed on one node", input(func(in *Input) {
			facts(in, "m1", func(f *Facts) { f.Closed = []string{"192.168.1.3:7946"} })
			facts(in, "w1", func(f *Facts) { f.Closed = []string{"192.168.1.3:7946"} })
			failCells(in, "w2", true)
		}), false, []want{{Fault, "w2", "", "7946/tcp", []string{"7946/tcp on w2 is not reachable from its peers"}}}},
		{"2377 unreachable from one worker", input(func(in *Input) {
			facts(in, "w1", func(f *Facts) { f.Closed = []string{"192.168.1.1:2377"} })
		}), false, []want{{Fault, "w1", "m1", "2377/tcp", []string{"w1 cannot reach 2377/tcp on m1"}}}},
		{"one pair only", input(func(in *Input) {
			for i, c := range in.Matrix.Cells {
				if c.From == "m1" && c.To == "w1" {
					in.Matrix.Cells[i].Small, in.Matrix.Cells[i].Big = Failed, Failed
				}
			}
		}), false, []want{{Fault, "m1", "w1", "overlay", []string{"from m1 to w1"}}}},
		{"no probe result", input(func(in *Input) {
			in.Matrix.Missing = map[string]string{"w2": "the probe's image busybox:latest is not on w2"}
		}), false,
			[]want{{Fault, "w2", "", "probe", []string{"busybox:latest is not on w2"}}}},
		{"no probe image, after up: a warning", input(func(in *Input) {
			in.Matrix.Missing = map[string]string{"w2": "the probe's image busybox:latest is not on w2"}
			in.Matrix.NoImage = map[string]bool{"w2": true}
			in.ImageOptional = true
		}), true,
			[]want{{Warning, "w2", "", "probe", []string{"data plane of w2 was not tested", "busybox:latest is not on w2"}}}},
		{"no probe image, asked for a check: a fault", input(func(in *Input) {
			in.Matrix.Missing = map[string]string{"w2": "the probe's image busybox:latest is not on w2"}
			in.Matrix.NoImage = map[string]bool{"w2": true}
		}), false,
			[]want{{Fault, "w2", "", "probe", []string{"busybox:latest is not on w2"}}}},
		{"service discovery", input(func(in *Input) {
			in.Matrix.DNS = map[string]string{"w1": "tasks.SERVICE listed 2 of 3 tasks", "m1": ""}
		}), false,
			[]want{{Fault, "w1", "", "dns", []string{"listed 2 of 3"}}}},
		{"bridge-nf-call-iptables off", input(func(in *Input) { facts(in, "w1", func(f *Facts) { f.BridgeNFCall = "0" }) }), true,
			[]want{{Warning, "w1", "", "br_netfilter", []string{"bridge-nf-call-iptables=1"}}}},
		{"facts not read: no reasoning on them", input(func(in *Input) { in.Facts["w1"] = Facts{Node: "w1"} }), true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Verdict(tc.in)
			if r.OK != tc.ok {
				t.Errorf("OK = %v, want %v: %+v", r.OK, tc.ok, r.Findings)
			}
			if len(r.Findings) != len(tc.want) {
				t.Fatalf("findings:\n%s\nwant %d", dump(r.Findings), len(tc.want))
			}
			for i, w := range tc.want {
				f := r.Findings[i]
				if f.Kind != w.kind || f.Node != w.node || f.Peer != w.peer || f.Check != w.check {
					t.Errorf("finding %d = %s/%s/%s/%s, want %s/%s/%s/%s", i, f.Kind, f.Node, f.Peer, f.Check, w.kind, w.node, w.peer, w.check)
				}
				for _, s := range w.cause {
					if !strings.Contains(f.Cause+" | "+f.Fix, s) {
						t.Errorf("finding %d lacks %q: %s | %s", i, s, f.Cause, f.Fix)
					}
				}
			}
		})
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Kind + " " + f.Node + "/" + f.Peer + " " + f.Check + ": " + f.Cause + " | " + f.Fix + "\n")
	}
	return b.String()
}
