package provision

import (
	"strings"
	"testing"
)

func TestIptablesPlan(t *testing.T) {
	ports := []string{"22/tcp", "2376/tcp", "2377/tcp", "7946/tcp", "7946/udp", "4789/udp"}
	drop := "-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate INVALID -j DROP\n-A INPUT -s 198.51.100.7/32 -j DROP\n"
	for _, tc := range []struct {
		name       string
		input      string
		firewalled bool
		peers      []string
		script     bool
		notes      []string
	}{
		{"policy ACCEPT: nothing", "-P INPUT ACCEPT\n", false, []string{"10.0.0.1"}, false, nil},
		{"DROP, firewalld or ufw runs: theirs", drop, true, []string{"10.0.0.1"}, false, nil},
		{"DROP, peers", drop, false, []string{"10.0.0.2", "10.0.0.1", "bad", "fd00::1"}, true, nil},
		{"DROP, no peers: said", drop, false, nil, false, []string{"does not know the swarm's other nodes"}},
		{"DROP, a catch-all reject", drop + "-A INPUT -j REJECT --reject-with icmp-host-prohibited\n", false, []string{"10.0.0.1"}, true,
			[]string{"-A INPUT -j REJECT --reject-with icmp-host-prohibited"}},
		{"DROP, a rule on a swarm port", drop + "-A INPUT -p tcp -m multiport --dports 80,2377 -j DROP\n", false, []string{"10.0.0.1"}, true,
			[]string{"--dports 80,2377 -j DROP"}},
		{"DROP, a rule on another port", drop + "-A INPUT -p tcp -m tcp --dport 8080 -j DROP\n", false, []string{"10.0.0.1"}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script, notes := iptablesPlan(iptablesFacts{input: tc.input}, tc.firewalled, tc.peers, ports)
			if (script != "") != tc.script {
				t.Fatalf("script %q", script)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %q", notes, tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %q lacks %q", notes[i], n)
				}
			}
			if script != "" {
				if strings.Contains(script, "fd00") || strings.Contains(script, "bad") || strings.Contains(script, "22,") {
					t.Errorf("script has what it should not:\n%s", script)
				}
				if strings.Index(script, "-s 10.0.0.1 ") > strings.Index(script, "-s 10.0.0.2 ") && strings.Contains(script, "10.0.0.2") {
					t.Errorf("peers not in order:\n%s", script)
				}
				if !strings.HasSuffix(script, "iptables -C INPUT -j SHOAL-SWARM 2>/dev/null || iptables -A INPUT -j SHOAL-SWARM\n") {
					t.Errorf("the chain is not appended to INPUT:\n%s", script)
				}
			}
		})
	}
}

func FuzzParseIptablesFacts(f *testing.F) {
	f.Add("-P INPUT DROP\n@@script\n#!/bin/sh\n@@enabled\nenabled")
	f.Fuzz(func(t *testing.T, s string) {
		fa := parseIptablesFacts(s)
		iptablesPlan(fa, false, []string{"10.0.0.1"}, []string{"2377/tcp"})
	})
}
