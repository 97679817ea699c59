package bootstrap

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ArchiveTags lists the image tags a `docker save` archive holds.
func ArchiveTags(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := maybeGunzip(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no manifest.json: not a 'docker save' archive", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Name == "manifest.json" {
			return manifestTags(tr, path)
		}
	}
}

// maybeGunzip reads r through gzip when it is compressed: docker load
// takes gzip-compressed archives too.
func maybeGunzip(r *bufio.Reader) (io.ReadCloser, error) {
	if magic, _ := r.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(r)
	}
	return io.NopCloser(r), nil
}

// manifestTags are the repository tags manifest.json (in r) lists.
func manifestTags(r io.Reader, path string) ([]string, error) {
	var manifest []struct{ RepoTags []string }
	if err := json.NewDecoder(r).Decode(&manifest); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
	}
	var tags []string
	for _, m := range manifest {
		tags = append(tags, m.RepoTags...)
	}
	return tags, nil
}

// LoadImages loads a `docker save` archive onto the node unless the node
// already has every image in it. It says whether it loaded.
func LoadImages(ctx context.Context, n *Node, path string) (bool, error) {
	tags, err := ArchiveTags(path)
	if err != nil {
		return false, err
	}
	return LoadImagesTagged(ctx, n, path, tags)
}

// LoadImagesTagged is LoadImages with the archive's tags read already
// (ArchiveTags reads the whole archive: once per run is enough).
func LoadImagesTagged(ctx context.Context, n *Node, path string, tags []string) (bool, error) {
	if hasImages(ctx, n, tags) {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	resp, err := n.API.ImageLoad(ctx, f)
	if err != nil {
		return false, fmt.Errorf("%s: docker load %s: %w", n.Name, path, err)
	}
	defer resp.Close()
	if err := loadError(resp); err != nil {
		return true, fmt.Errorf("%s: docker load %s: %w", n.Name, path, err)
	}
	return true, nil
}

// hasImages tells whether the node has every image tagged (none: no).
func hasImages(ctx context.Context, n *Node, tags []string) bool {
	if len(tags) == 0 {
		return false
	}
	for _, t := range tags {
		if _, err := n.API.ImageInspect(ctx, t); err != nil {
			return false
		}
	}
	return true
}

// loadError reads docker load's answer, a JSON stream: an error inside
// it is the load's error.
func loadError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string
			ErrorDetail struct{ Message string }
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}
