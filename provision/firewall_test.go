package provision

import (
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/provision/osfamily"
)

func rhelFamily() osfamily.Family { return osfamily.RHEL{Major: 9} }

func TestParseUFW(t *testing.T) {
	// `ufw status verbose` of Debian 12's ufw 0.36.2 (the lab), with the
	// rules of `ufw status` (no verbose) mixed in: both forms must read.
	status := `Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp (OpenSSH)           ALLOW IN    Anywhere                  
2376/tcp                   ALLOW IN    Anywhere                  
7946                       ALLOW IN    Anywhere                  
6000:6010/udp              ALLOW IN    Anywhere                  
80,443/tcp (Apache Full)   ALLOW IN    Anywhere                  
2377/tcp                   ALLOW IN    10.0.0.0/8                
9999/tcp on eth0           ALLOW IN    Anywhere                  
10.1.1.1 8888/tcp          ALLOW IN    Anywhere                  
4789/udp                   DENY IN     Anywhere                  
5000/tcp                   ALLOW OUT   Anywhere                  
OpenSSH                    ALLOW       Anywhere                  
3000/udp                   LIMIT       Anywhere                  
22/tcp (OpenSSH (v6))      ALLOW IN    Anywhere (v6)             
2377/tcp (v6)              ALLOW IN    Anywhere (v6)             
`
	active, open := parseUFW(status)
	if !active {
		t.Fatal("not seen as active")
	}
	for p, want := range map[string]bool{
		"22/tcp": true, "2376/tcp": true, "7946/tcp": true, "7946/udp": true, "6005/udp": true, "443/tcp": true, "3000/udp": true,
		"2376/udp": false, "2377/tcp": false, "9999/tcp": false, "8888/tcp": false, "4789/udp": false, "5000/tcp": false, "6005/tcp": false, "22/udp": false,
	} {
		if got := open.covers(p); got != want {
			t.Errorf("covers(%s) = %v, want %v", p, got, want)
		}
	}
	if active, _ := parseUFW("Status: inactive\n"); active {
		t.Error("inactive seen as active")
	}
	if active, _ := parseUFW(""); active {
		t.Error("no ufw seen as active")
	}
	_, open = parseUFW("Status: active\nDefault: allow (incoming), allow (outgoing), disabled (routed)\n")
	if !open.covers("4789/udp") {
		t.Error("default allow (incoming) lets everything in")
	}
}

func TestParseFirewalld(t *testing.T) {
	listAll := `public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: cockpit dhcpv6-client ssh docker-swarm
  ports: 5000/tcp 8000-8010/udp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
`
	open := parseFirewalld(listAll)
	for p, want := range map[string]bool{
		"22/tcp": true, "2377/tcp": true, "7946/tcp": true, "7946/udp": true, "4789/udp": true, "5000/tcp": true, "8005/udp": true,
		"2376/tcp": false, "5000/udp": false, "8005/tcp": false,
	} {
		if got := open.covers(p); got != want {
			t.Errorf("covers(%s) = %v, want %v", p, got, want)
		}
	}
	if !parseFirewalld("trusted (active)\n  target: ACCEPT\n").covers("2376/tcp") {
		t.Error("a zone with target ACCEPT lets everything in")
	}
}

func TestWantedPorts(t *testing.T) {
	got, err := wantedPorts(Spec{TLS: &TLS{Port: 3376}, FirewallPorts: []string{"5000/tcp", "2377/tcp", "5000/tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "22/tcp 2376/tcp 2377/tcp 7946/tcp 7946/udp 4789/udp 3376/tcp 5000/tcp"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"5000", "0/tcp", "65536/tcp", "5000/sctp", "5000/tcp ", "$(reboot)/tcp"} {
		if _, err := wantedPorts(Spec{FirewallPorts: []string{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestFirewallPlan: only the missing ports, in the runtime and the
// permanent configuration each where missing, in the zone of the swarm
// interface; never a --reload (it drops runtime-only rules); nothing when
// all are open or no firewall runs.
func TestFirewallPlan(t *testing.T) {
	all := "  services: ssh\n  ports: 2376/tcp 2377/tcp 7946/tcp 7946/udp 4789/udp 5000/tcp\n"
	some := "  services: ssh\n  ports: 2376/tcp 2377/tcp\n"
	for _, tc := range []struct {
		name, facts, want string
	}{
		{"no firewall", "@@firewalld\ninactive\n@@ufw\n", ""},
		{"ufw inactive", "@@firewalld\ninactive\n@@ufw\nStatus: inactive\n", ""},
		{"firewalld, all open", "@@firewalld\nactive\n@@firewalld-runtime\n" + all + "@@firewalld-permanent\n" + all, ""},
		{"firewalld, some open", "@@firewalld\nactive\n@@firewalld-runtime\n" + some + "@@firewalld-permanent\n" + some,
			"firewall-cmd --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp && firewall-cmd --permanent --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp"},
		{"firewalld, permanent only: runtime added, no reload", "@@firewalld\nactive\n@@firewalld-runtime\n" + some + "@@firewalld-permanent\n" + all,
			"firewall-cmd --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp"},
		{"firewalld, runtime only: permanent added", "@@firewalld\nactive\n@@firewalld-runtime\n" + all + "@@firewalld-permanent\n" + some,
			"firewall-cmd --permanent --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp"},
		{"firewalld, the interface in zone internal", "@@firewalld\nactive\n@@firewalld-zone\neth1 internal\n@@firewalld-runtime\n" + some + "@@firewalld-permanent\n" + some,
			"firewall-cmd --zone=internal --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp && firewall-cmd --permanent --zone=internal --add-port=7946/tcp --add-port=7946/udp --add-port=4789/udp --add-port=5000/tcp"},
		{"firewalld, trusted zone lets all in", "@@firewalld\nactive\n@@firewalld-zone\neth1 trusted\n@@firewalld-runtime\n  target: ACCEPT\n@@firewalld-permanent\n  target: ACCEPT\n", ""},
		{"ufw, some open", "@@firewalld\ninactive\n@@ufw\nStatus: active\n\nTo                         Action      From\n22/tcp                     ALLOW       Anywhere\n7946                       ALLOW       Anywhere\n",
			"ufw allow 2376/tcp && ufw allow 2377/tcp && ufw allow 4789/udp && ufw allow 5000/tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Host{Spec: Spec{FirewallPorts: []string{"5000/tcp"}}, Facts: testFacts(tc.facts + "@@end\n")}
			got, err := (firewallStep{}).plan(h)
			if err != nil || got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}
