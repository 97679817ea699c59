package dataplane

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteReport(t *testing.T) {
	in := input(func(in *Input) {
		for _, n := range nodes3 {
			facts(in, n, func(f *Facts) { f.IPVS = false })
		}
		failCells(in, "w2", true)
	})
	r := Verdict(in)
	r.Runs = []RunTiming{{Make: 0.4, Start: 2.1, Probe: 6.5, Cleanup: 1.2}, {Make: 0.3, Start: 1.9, Probe: 6.0, Cleanup: 1.1}}
	var b bytes.Buffer
	WriteMatrix(&b, r)
	WriteFindings(&b, r)
	got := b.String()
	if !strings.HasSuffix(got, "Probe run 2: made in 0.3s, its tasks started in 1.9s, probed in 6.0s, removed in 1.1s.\nData plane: 1 fault (1 limit of these hosts).\n") {
		t.Errorf("each probe run's time, then the verdict, last:\n%s", got)
	}
	for _, want := range []string{
		"Probe run 1: made in 0.4s, its tasks started in 2.1s, probed in 6.5s, removed in 1.2s.",
		"FROM \\ TO  m1    w1    w2",
		"m1         -     ok    fail",
		"w2         fail  fail  -",
		"FAULT: 4789/udp (VXLAN) is dropped on w2",
		"  fix: open 4789/udp on w2",
		"LIMIT: this kernel has no IP_VS",
		"Data plane: 1 fault (1 limit of these hosts).",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	b.Reset()
	WriteLines(&b, Verdict(input(nil)))
	if !strings.Contains(b.String(), "pair m1 w1 ok (small ok, full-size ok)\n") {
		t.Errorf("plain lines:\n%s", b.String())
	}
	if s := Summary(Verdict(input(nil))); s != "Data plane: works between all 3 nodes." {
		t.Errorf("summary %q", s)
	}
}

// TestWriteReportMesh: a routing mesh that fails at one node shows in its
// column, in the plain lines, and the summary says when VIPs and the mesh
// were tested.
func TestWriteReportMesh(t *testing.T) {
	r := Verdict(input(func(in *Input) { meshAll(in, OK); meshTo(in, "w2", Failed) }))
	var b bytes.Buffer
	WriteMatrix(&b, r)
	WriteLines(&b, r)
	for _, want := range []string{
		"m1         -   ok  mesh",
		"pair m1 w2 mesh (small ok, full-size ok, routing mesh fail)\n",
		"pair m1 w1 ok (small ok, full-size ok, routing mesh ok)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	if s := Summary(Verdict(input(func(in *Input) { meshAll(in, OK) }))); s != "Data plane: works between all 3 nodes, service VIPs and the routing mesh too." {
		t.Errorf("summary %q", s)
	}
}
