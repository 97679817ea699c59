package libvirt

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The domain XML is built with libvirtxml's structs rather than a
// text/template: encoding/xml escapes every value, the same types read the
// XML back (reservations, capabilities), and a template would bring a second
// spelling of the schema plus hand escaping. The golden file pins the text
// libvirt gets; go test ./drivers/libvirt -update rewrites it.
func TestDomainXMLGolden(t *testing.T) {
	for name, spec := range map[string]func() domainSpec{
		"domain-qemu.xml": testSpec,
		"domain-kvm.xml": func() domainSpec {
			s := testSpec()
			s.Type, s.ConsoleLog = DomainTypeKVM, ""
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			x, err := domainXML(spec()).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got := []byte(x + "\n")
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from %s (-update rewrites it):\n%s", path, got)
			}
		})
	}
}

// Values that would close an element or add one in a hand-written document
// come back as they went in.
func TestDomainXMLHostileValues(t *testing.T) {
	const evil = `a'b"c<d>&e]]></shoal:machine><devices/>`
	s := testSpec()
	s.Name, s.MachineDir, s.DiskPath, s.Network = evil, "/x/"+evil, "/p/"+evil, evil
	x, err := domainXML(s).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if d.Name != evil || d.Devices.Disks[0].Source.File.File != "/p/"+evil || d.Devices.Interfaces[0].Source.Network.Network != evil {
		t.Fatalf("read back %q %q", d.Name, d.Devices.Disks[0].Source.File.File)
	}
	if strings.Count(x, "<devices>") != 1 || !strings.Contains(d.Metadata.XML, "&lt;/shoal:machine&gt;") {
		t.Fatalf("structure changed:\n%s", x)
	}
}
