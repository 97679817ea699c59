package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type tarEntry struct {
	name string
	data string
}

func writeTar(t *testing.T, entries ...tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if strings.HasSuffix(e.name, "/") {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.name, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "images.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestArchiveTags(t *testing.T) {
	// The layout of `docker save registry:2 busybox:latest`: layers and
	// configs first, manifest.json and repositories after.
	path := writeTar(t,
		tarEntry{"blobs/", ""},
		tarEntry{"blobs/sha256/", ""},
		tarEntry{"blobs/sha256/aaaa", "layer"},
		tarEntry{"index.json", `{"schemaVersion":2}`},
		tarEntry{"manifest.json", `[{"Config":"blobs/sha256/c1","RepoTags":["registry:2"],"Layers":["blobs/sha256/aaaa"]},` +
			`{"Config":"blobs/sha256/c2","RepoTags":["busybox:latest","busybox:1.36"],"Layers":[]},` +
			`{"Config":"blobs/sha256/c3","RepoTags":null,"Layers":[]}]`},
		tarEntry{"repositories", `{}`},
	)
	got, err := ArchiveTags(path)
	if err != nil {
		t.Fatalf("ArchiveTags: %v", err)
	}
	want := []string{"registry:2", "busybox:latest", "busybox:1.36"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ArchiveTags = %v, want %v", got, want)
	}
}

func TestArchiveTagsNoManifest(t *testing.T) {
	path := writeTar(t, tarEntry{"layer.tar", "x"}, tarEntry{"repositories", "{}"})
	_, err := ArchiveTags(path)
	if err == nil {
		t.Fatal("ArchiveTags on an archive without manifest.json succeeded")
	}
	if !strings.Contains(err.Error(), "manifest.json") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name the file and manifest.json", err)
	}
}

func TestArchiveTagsBadManifest(t *testing.T) {
	path := writeTar(t, tarEntry{"manifest.json", "{not json"})
	if _, err := ArchiveTags(path); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Fatalf("ArchiveTags with a broken manifest.json = %v, want an error about it", err)
	}
}

func TestArchiveTagsNotATar(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a tar "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ArchiveTags(path); err == nil {
		t.Fatal("ArchiveTags on a text file succeeded")
	}
	if _, err := ArchiveTags(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Fatal("ArchiveTags on a missing file succeeded")
	}
}

// `docker load` takes a gzip-compressed `docker save` archive as well.
func TestArchiveTagsGzip(t *testing.T) {
	plain := writeTar(t, tarEntry{"manifest.json", `[{"RepoTags":["registry:2"]}]`})
	data, _ := os.ReadFile(plain)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	path := filepath.Join(t.TempDir(), "images.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ArchiveTags(path)
	if err != nil {
		t.Fatalf("ArchiveTags on a gzipped archive (docker load accepts it): %v", err)
	}
	if !reflect.DeepEqual(got, []string{"registry:2"}) {
		t.Errorf("ArchiveTags = %v", got)
	}
}

func TestRegistryWithDefaults(t *testing.T) {
	got := Registry{Hostname: "m1"}.WithDefaults()
	want := Registry{Name: "registry", Hostname: "m1", Port: 5000, Image: "registry:2", Path: "/var/lib/registry"}
	if got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
	set := Registry{Name: "reg", Hostname: "m2", Port: 5001, Image: "my/registry:3", Path: "/data/reg"}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed set fields: %+v, want %+v", got, set)
	}
	// The receiver is a value: the original is untouched.
	var zero Registry
	_ = zero.WithDefaults()
	if zero != (Registry{}) {
		t.Errorf("WithDefaults changed its receiver: %+v", zero)
	}
}

func TestRegistrySpec(t *testing.T) {
	r := Registry{Hostname: "node-1", Port: 5050}.WithDefaults()
	s := r.spec()
	if s.Name != "registry" {
		t.Errorf("service name = %q", s.Name)
	}
	cs := s.TaskTemplate.ContainerSpec
	if cs == nil || cs.Image != "registry:2" {
		t.Fatalf("container spec = %+v", cs)
	}
	if len(cs.Mounts) != 1 || cs.Mounts[0].Source != "/var/lib/registry" || cs.Mounts[0].Target != "/var/lib/registry" {
		t.Errorf("mounts = %+v", cs.Mounts)
	}
	if p := s.TaskTemplate.Placement; p == nil || len(p.Constraints) != 1 || p.Constraints[0] != "node.hostname==node-1" {
		t.Errorf("placement = %+v", p)
	}
	if s.Mode.Replicated == nil || s.Mode.Replicated.Replicas == nil || *s.Mode.Replicated.Replicas != 1 {
		t.Errorf("mode = %+v, want one replica", s.Mode)
	}
	ports := s.EndpointSpec.Ports
	if len(ports) != 1 || ports[0].PublishedPort != 5050 || ports[0].TargetPort != 5000 || ports[0].PublishMode != "host" {
		t.Errorf("ports = %+v, want 5050->5000 in host mode", ports)
	}
	if !sameSpec(s, r.spec()) {
		t.Error("sameSpec(spec, spec) = false")
	}
	// What the engine reports back carries a digest on the image.
	have := r.spec()
	have.TaskTemplate.ContainerSpec.Image = "registry:2@sha256:abcd"
	if !sameSpec(have, r.spec()) {
		t.Error("sameSpec is false for the same image with a digest")
	}
	for name, change := range map[string]func(*Registry){
		"port":  func(r *Registry) { r.Port = 5001 },
		"image": func(r *Registry) { r.Image = "registry:3" },
		"path":  func(r *Registry) { r.Path = "/srv/reg" },
		"node":  func(r *Registry) { r.Hostname = "node-2" },
	} {
		other := r
		change(&other)
		if sameSpec(r.spec(), other.spec()) {
			t.Errorf("sameSpec is true after a %s change", name)
		}
	}
}
