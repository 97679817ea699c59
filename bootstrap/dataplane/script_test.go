package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbeScriptPutsTruncatedAnswersTogether runs the probe's script in a
// POSIX shell with a fake nslookup that answers as Docker's DNS does over
// UDP, with a shuffled 11 of the 30 tasks, and a fake ping that a peer
// answers only from its 4th ping on: the script must still find all 30
// peers, ping each with both sizes (that peer again after the others) and
// count the service's 30 addresses.
func TestProbeScriptPutsTruncatedAnswersTogether(t *testing.T) {
	const n = 30
	dir := t.TempDir()
	var addrs []string
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("10.0.1.%d", i+2))
	}
	if err := os.WriteFile(filepath.Join(dir, "addrs"), []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fakes := map[string]string{
		"nslookup": "#!/bin/sh\necho 'Server:\t\t127.0.0.11'\necho 'Address:\t127.0.0.11:53'\necho\necho \"Name:\t$1\"\nshuf -n 11 " + filepath.Join(dir, "addrs") + " | sed 's/^/Address: /'\n",
		// 10.0.1.5 answers from its 4th ping of each size on: the second
		// round must find it.
		"ping": "#!/bin/sh\neval ip=\\${$#}\nf=" + dir + "/pinged-$ip-$6\necho >> $f\n[ $ip != 10.0.1.5 ] || [ $(wc -l < $f) -gt 3 ]\n",
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", ProbeScript())
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "SVC=probe", fmt.Sprintf("N=%d", n), "BIG=1422", "WAIT=20", "BATCH=10", "TMPDIR=" + dir}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var log strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if sc.Text() == "DONE" {
			break
		}
	}
	r := ParseResult(log.String())
	if !r.Done || r.Listed != n || r.Named != n || len(r.Peers) != n {
		t.Fatalf("listed %d, named %d, %d peers, done %v; want %d of each:\n%s", r.Listed, r.Named, len(r.Peers), r.Done, n, log.String())
	}
	if !strings.Contains(log.String(), "R 10.0.1.5 small fail") {
		t.Errorf("10.0.1.5 failed its first 3 pings, the log says nothing of it:\n%s", log.String())
	}
	for a, res := range r.Peers {
		if res != [2]string{OK, OK} {
			t.Errorf("peer %s: %v", a, res)
		}
	}
}

// TestGossipIDScript runs the gossip name's script with a fake journalctl
// printing dockerd's start line: ParseFacts reads the name from it.
func TestGossipIDScript(t *testing.T) {
	dir := t.TempDir()
	journal := "#!/bin/sh\necho 'dockerd[1]: level=info msg=\"Gossip cluster hostname n1-2ee6c0fe9983\"'\necho 'dockerd[1]: level=info msg=\"memberlist: will use memberlist nodeID:2ee6c0fe9983 with config:&{}\"'\n"
	if err := os.WriteFile(filepath.Join(dir, "journalctl"), []byte(journal), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", GossipIDScript)
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := ParseFacts("n1", string(out)).GossipID; got != "2ee6c0fe9983" {
		t.Errorf("gossip ID %q from %q", got, out)
	}
}

func TestNeedGossipIDs(t *testing.T) {
	quiet := []Facts{{Node: "a", Read: true}, {Node: "b", Read: true}}
	if NeedGossipIDs(quiet) || NeedGossipIDs(nil) {
		t.Error("no complaint: the gossip names are not needed")
	}
	if !NeedGossipIDs(append(quiet, Facts{Node: "c", Read: true, GossipUDPTo: []string{"2ee6c0fe9983"}})) {
		t.Error("a complaint: the names are needed to tell who the peer is")
	}
}

// TestGossipComplaintsScript: the complaints are read of the window asked
// (the check's own time), with a fake journalctl that answers only then.
func TestGossipComplaintsScript(t *testing.T) {
	dir := t.TempDir()
	journal := "#!/bin/sh\n[ \"$*\" = '-u docker --no-pager --since -43s' ] || exit 1\necho 'dockerd[1]: level=info msg=\"memberlist: Was able to connect to 7975bf9f9d80 over TCP but UDP probes failed, network may be misconfigured\"'\n"
	if err := os.WriteFile(filepath.Join(dir, "journalctl"), []byte(journal), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", GossipComplaintsScript(42100*time.Millisecond))
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	out, _ := cmd.Output()
	if got := ParseFacts("n1", string(out)).GossipUDPTo; fmt.Sprint(got) != "[7975bf9f9d80]" {
		t.Errorf("complaints %v from %q", got, out)
	}
}
