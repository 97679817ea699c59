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
	var b bytes.Buffer
	WriteMatrix(&b, r)
	WriteFindings(&b, r)
	got := b.String()
	for _, want := range []string{
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
