package provision

import (
	"context"
	"slices"
	"testing"
)

// As firewalld 1.3 (Debian 12, RHEL 9) prints `--list-all-zones`.
const allZones13 = `block
  target: %%REJECT%%
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: 
  ports: 
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 

public (default, active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: dhcpv6-client ssh
  ports: 2377/tcp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
`

const allZones13Runtime = `block
  target: %%REJECT%%
  icmp-block-inversion: no
  interfaces: 
  sources: 10.1.2.0/24
  services: 
  ports: 
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 

public (default, active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: dhcpv6-client http ssh
  ports: 2377/tcp 9999/tcp 6000-6010/udp
  protocols: gre
  forward: yes
  masquerade: yes
  forward-ports: 
	port=8080:proto=tcp:toport=80:toaddr=
  source-ports: 
  icmp-blocks: echo-request
  rich rules: 
	rule family="ipv4" source address="192.0.2.1" port port="5432" protocol="tcp" accept
`

// As firewalld 0.6 (CentOS 7) prints it: forward ports on the key's line.
const allZones06Runtime = `public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: ssh dhcpv6-client
  ports: 9999/tcp
  protocols: 
  masquerade: no
  forward-ports: port=8080:proto=tcp:toport=80:toaddr= port=8443:proto=tcp:toport=443:toaddr=
  source-ports: 
  icmp-blocks: 
  rich rules: 
`

const allZones06Perm = `public
  target: default
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: ssh dhcpv6-client
  ports: 
  protocols: 
  masquerade: no
  forward-ports: port=8443:proto=tcp:toport=443:toaddr=
  source-ports: 
  icmp-blocks: 
  rich rules: 
`

func TestFirewalldKeep(t *testing.T) {
	for _, tc := range []struct {
		name, runtime, perm string
		want                []string
	}{
		{"the same: nothing", allZones13, allZones13, nil},
		{"firewalld 1.3, every kind", allZones13Runtime, allZones13, []string{
			"firewall-cmd --zone=block --add-source=10.1.2.0/24",
			"firewall-cmd --zone=public --add-service=http",
			"firewall-cmd --zone=public --add-port=9999/tcp --add-port=6000-6010/udp",
			"firewall-cmd --zone=public --add-protocol=gre",
			"firewall-cmd --zone=public --add-forward-port=port=8080:proto=tcp:toport=80:toaddr=",
			"firewall-cmd --zone=public --add-icmp-block=echo-request",
			`firewall-cmd --zone=public --add-rich-rule='rule family="ipv4" source address="192.0.2.1" port port="5432" protocol="tcp" accept'`,
			"firewall-cmd --zone=public --add-masquerade",
		}},
		{"only permanent: a reload adds it, nothing to keep", allZones13, allZones13Runtime, nil},
		{"firewalld 0.6", allZones06Runtime, allZones06Perm, []string{
			"firewall-cmd --zone=public --add-port=9999/tcp",
			"firewall-cmd --zone=public --add-forward-port=port=8080:proto=tcp:toport=80:toaddr=",
		}},
		{"a zone name that needs quoting", "we;rd\n  ports: 1/tcp\n", "", []string{"firewall-cmd --zone='we;rd' --add-port=1/tcp"}},
		{"nothing read", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firewalldKeep(tc.runtime, tc.perm); !slices.Equal(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestFirewalldKeepStep: the step runs only where the probe found no
// Docker zone and this run started dockerd.
func TestFirewalldKeepStep(t *testing.T) {
	facts := func(zone string) *Facts {
		return testFacts("@@firewalld\nactive\n@@firewalld-docker-zone\n" + zone + "\n@@firewalld-all-runtime\n" + allZones06Runtime + "@@firewalld-all-permanent\n" + allZones06Perm)
	}
	for _, tc := range []struct {
		name    string
		zone    string
		started bool
		want    bool
	}{
		{"no zone, dockerd started", "no", true, true},
		{"no zone, dockerd not started", "no", false, false},
		{"zone there", "yes", true, false},
	} {
		h := &Host{Facts: facts(tc.zone)}
		h.keepRules = (firewalldKeepStep{}).keep(h)
		h.dockerdStarted = tc.started
		if got, _ := (firewalldKeepStep{}).Check(context.Background(), h); got != tc.want {
			t.Errorf("%s: Check = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzFirewalldKeep(f *testing.F) {
	f.Add(allZones13Runtime, allZones13)
	f.Add(allZones06Runtime, allZones06Perm)
	f.Fuzz(func(t *testing.T, runtime, perm string) {
		for _, c := range firewalldKeep(runtime, perm) {
			if len(c) < len("firewall-cmd --zone=") {
				t.Fatalf("short command %q", c)
			}
		}
	})
}

func TestIPVSPlan(t *testing.T) {
	for _, tc := range []struct {
		probe         string
		load, persist bool
		note          bool
	}{
		{"loaded=no module=yes persisted=no", true, true, false},
		{"loaded=yes module=yes persisted=no", false, true, false},
		{"loaded=yes module=yes persisted=yes", false, false, false},
		{"loaded=no module=yes persisted=yes", true, false, false},
		{"loaded=yes module=no persisted=no", false, false, false}, // built in
		{"loaded=no module=no persisted=no", false, false, true},   // no module: a host limit
		{"", false, false, true},
	} {
		load, persist, note := ipvsPlan(parseIPVS(tc.probe))
		if load != tc.load || persist != tc.persist || (note != "") != tc.note {
			t.Errorf("%q: load %v persist %v note %q, want %v %v %v", tc.probe, load, persist, note, tc.load, tc.persist, tc.note)
		}
	}
}
