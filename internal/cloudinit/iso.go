package cloudinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// VolumeLabel is the label cloud-init's NoCloud datasource looks for.
const VolumeLabel = "cidata"

// File names in the seed, as cloud-init reads them.
const (
	MetaDataFile      = "meta-data"
	UserDataFile      = "user-data"
	NetworkConfigFile = "network-config"
)

const (
	isoBlockSize = 2048
	// pvdOffset is where the primary volume descriptor starts (sector 16).
	pvdOffset = 16 * isoBlockSize
	// isoScratchSize bounds the seed: the writer needs its backing file
	// sized up front; the result is cut to the volume's real size.
	isoScratchSize = 4 << 20
)

// Files returns the seed's files by name.
func (s Seed) Files() (map[string][]byte, error) {
	ud, err := s.UserData()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		MetaDataFile:      s.MetaData(),
		UserDataFile:      ud,
		NetworkConfigFile: s.NetworkConfig(),
	}, nil
}

// ISO returns the NoCloud seed: an ISO9660 image labelled "cidata" holding
// meta-data, user-data and network-config, with Rock Ridge and Joliet names
// (plain ISO9660 names cannot have dashes).
func (s Seed) ISO() ([]byte, error) {
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	return buildISO(VolumeLabel, files)
}

func buildISO(label string, files map[string][]byte) (_ []byte, err error) {
	// The ISO writer stages files in a workspace folder and writes the
	// image to a file; both are temporary.
	tmp, err := os.MkdirTemp("", "shoal-seed-")
	if err != nil {
		return nil, fmt.Errorf("seed iso: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	var total int64
	for _, b := range files {
		total += int64(len(b)) + isoBlockSize
	}
	imgPath := filepath.Join(tmp, "seed.iso")
	workspace := filepath.Join(tmp, "ws")
	if err := os.Mkdir(workspace, 0o700); err != nil {
		return nil, fmt.Errorf("seed iso: %w", err)
	}
	if err := writeISO(imgPath, workspace, label, files, isoScratchSize+total); err != nil {
		return nil, fmt.Errorf("seed iso: %w", err)
	}
	img, err := os.ReadFile(imgPath)
	if err != nil {
		return nil, fmt.Errorf("seed iso: %w", err)
	}
	return trimISO(img)
}

// writeISO writes the image of files to imgPath (size bytes at most),
// staging them in workspace.
func writeISO(imgPath, workspace, label string, files map[string][]byte, size int64) error {
	store, err := file.CreateFromPath(imgPath, size)
	if err != nil {
		return err
	}
	if err := fillISO(store, workspace, label, files); err != nil {
		_ = store.Close()
		return err
	}
	return store.Close()
}

// fillISO writes files into the image on store and finalizes it.
func fillISO(store backend.Storage, workspace, label string, files map[string][]byte) error {
	fsys, err := iso9660.Create(store, 0, 0, isoBlockSize, workspace)
	if err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(workspace, name), content, 0o600); err != nil {
			return err
		}
	}
	if err := fsys.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: label}); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	return nil
}

// trimISO cuts the image to the volume space size its primary volume
// descriptor declares, so that the seed volume is only as large as it is.
func trimISO(img []byte) ([]byte, error) {
	if len(img) < pvdOffset+isoBlockSize || img[pvdOffset] != 1 || string(img[pvdOffset+1:pvdOffset+6]) != "CD001" {
		return nil, errors.New("seed iso: no primary volume descriptor")
	}
	blocks := binary.LittleEndian.Uint32(img[pvdOffset+80:])
	size := int64(blocks) * int64(binary.LittleEndian.Uint16(img[pvdOffset+128:]))
	if size <= 0 || size > int64(len(img)) {
		return img, nil
	}
	return img[:size], nil
}
