package fakevbox

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Disk image headers, as far as the fake reads and writes them.
const (
	vdiText      = "<<< Oracle VM VirtualBox Disk Image >>>\n"
	vdiSignature = 0xbeda107f // little-endian at offset 0x40
	vdiSizeAt    = 0x170      // cbDisk, little-endian uint64
	vdiUUIDAt    = 0x188      // uuidCreate: the image's UUID
	qcowMagic    = "QFI\xfb"  // virtual size: big-endian uint64 at 24
	vmdkMagic    = "KDMV"     // capacity in sectors: little-endian uint64 at 12
	vmdkText     = "# Disk DescriptorFile"
)

// readImage tells an image's format and virtual size from its header, as
// VirtualBox's VD backends probe them. Raw images are what is left.
func readImage(path string) (format string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.Read(head)
	head = head[:n]
	switch {
	case len(head) >= 0x178 && binary.LittleEndian.Uint32(head[0x40:]) == vdiSignature:
		return "VDI", int64(binary.LittleEndian.Uint64(head[vdiSizeAt:])), nil
	case len(head) >= 32 && string(head[:4]) == qcowMagic:
		// QCOW.cpp supports no qcow2 v3 incompatible feature (dirty,
		// corrupt, external data file, zstd compression, extended L2).
		if binary.BigEndian.Uint32(head[4:]) == 3 && len(head) >= 80 {
			if feat := binary.BigEndian.Uint64(head[72:]); feat != 0 {
				return "", 0, fmt.Errorf("QCow: Image '%s' contains unsupported incompatible features (%x vs %x)", path, feat, 0)
			}
		}
		return "QCOW2", int64(binary.BigEndian.Uint64(head[24:])), nil
	case len(head) >= 20 && string(head[:4]) == vmdkMagic:
		return "VMDK", int64(binary.LittleEndian.Uint64(head[12:])) * 512, nil
	case bytes.HasPrefix(head, []byte(vmdkText)):
		return "VMDK", fileSize(path), nil
	case len(head) == 0:
		return "", 0, errors.New("empty image")
	}
	return "RAW", fileSize(path), nil
}

// writeVDI writes a VDI header for a disk of size bytes with the image's
// UUID (the data blocks are left out: the fake never reads them).
func writeVDI(path string, size int64, uuid string) error {
	head := make([]byte, 512)
	copy(head[vdiUUIDAt:], uuidBytes(uuid))
	copy(head, vdiText)
	binary.LittleEndian.PutUint32(head[0x40:], vdiSignature)
	binary.LittleEndian.PutUint32(head[0x44:], 0x00010001) // version 1.1
	binary.LittleEndian.PutUint64(head[vdiSizeAt:], uint64(size))
	return os.WriteFile(path, head, 0o600)
}

// vdiUUID reads the UUID a VDI image carries, "" for other formats.
func vdiUUID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.Read(head)
	if n < vdiUUIDAt+16 || binary.LittleEndian.Uint32(head[0x40:]) != vdiSignature {
		return ""
	}
	b := head[vdiUUIDAt : vdiUUIDAt+16]
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func uuidBytes(uuid string) []byte {
	b, _ := hex.DecodeString(strings.ReplaceAll(uuid, "-", ""))
	return b
}

// WriteQCOW2 writes the header of a qcow2 image of size bytes: enough for
// the fake (and for format sniffing) to take it for a cloud image.
func WriteQCOW2(path string, size int64) error {
	return WriteQCOW2Features(path, size, 0)
}

// WriteQCOW2Features writes a qcow2 v3 header with these incompatible
// feature bits (bit 3: zstd compression, as recent qemu-img can make).
func WriteQCOW2Features(path string, size int64, incompat uint64) error {
	head := make([]byte, 512)
	copy(head, qcowMagic)
	binary.BigEndian.PutUint32(head[4:], 3) // version
	binary.BigEndian.PutUint64(head[24:], uint64(size))
	binary.BigEndian.PutUint64(head[72:], incompat)
	binary.BigEndian.PutUint32(head[100:], 104) // header length
	return os.WriteFile(path, head, 0o600)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func jsonMarshal(v any) ([]byte, error)   { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
