package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadSharedParsesOnce: while a config.json stays as it is,
// LoadShared gives the one value it parsed; once Save changed the file,
// the new one.
func TestLoadSharedParsesOnce(t *testing.T) {
	st := newStore(t)
	m := &Machine{Name: "master", Driver: "generic", Setup: Setup{Hostname: "master", Cluster: "c"}, Address: "10.0.0.1"}
	if err := st.Save(m); err != nil {
		t.Fatal(err)
	}
	a, err := st.LoadShared("master")
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.LoadShared("master")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("an unchanged config.json was parsed again")
	}
	if a.Address != "10.0.0.1" || a.Cluster != "c" {
		t.Errorf("LoadShared = %+v", a)
	}
	m.Address = "10.0.0.2"
	if err := st.Save(m); err != nil {
		t.Fatal(err)
	}
	c, err := st.LoadShared("master")
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != "10.0.0.2" {
		t.Errorf("after a Save LoadShared still says %s", c.Address)
	}
	if _, err := st.LoadShared("missing"); err == nil {
		t.Error("LoadShared of a machine that is not there did not fail")
	}
	if _, err := st.LoadShared("../x"); err == nil {
		t.Error("LoadShared of an invalid name did not fail")
	}
}

// TestLoadSharedBounded: LoadShared keeps a few configs, not every one
// it was asked for.
func TestLoadSharedBounded(t *testing.T) {
	st := newStore(t)
	for i := range 3 * maxShared {
		name := fmt.Sprintf("m%d", i)
		if err := st.Save(&Machine{Name: name, Driver: "generic", Setup: Setup{Hostname: name}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.LoadShared(name); err != nil {
			t.Fatal(err)
		}
		if n := len(st.shared.m); n > maxShared {
			t.Fatalf("LoadShared keeps %d configs", n)
		}
	}
}

// TestClusterOf reads the cluster from the head of a config.json, also
// from files written by hand or by older versions, in any key order.
func TestClusterOf(t *testing.T) {
	st := newStore(t)
	hosts := make([]HostEntry, 50)
	for i := range hosts {
		hosts[i] = HostEntry{IP: fmt.Sprintf("10.0.0.%d", i), Names: []string{fmt.Sprintf("n%d", i)}}
	}
	if err := st.Save(&Machine{Name: "saved", Driver: "generic", Setup: Setup{Hostname: "saved", Cluster: "prod", Hosts: hosts}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(&Machine{Name: "alone", Driver: "generic", Setup: Setup{Hostname: "alone"}}); err != nil {
		t.Fatal(err)
	}
	raw := map[string]string{
		"late":    `{"hosts":[{"ip":"10.0.0.1","names":["a"]}],"name":"late","driver":"generic","cluster":"prod","version":1}`,
		"old":     `{"name":"old","driver":"generic","cluster":"prod"}`,
		"newer":   `{"version":99,"name":"newer","cluster":"prod"}`,
		"broken":  `{"version":1,"cluster":`,
		"notjson": `cluster: prod`,
	}
	for name, data := range raw {
		dir := st.MachineDir(name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want string
		fails      bool
	}{
		{name: "saved", want: "prod"},
		{name: "alone", want: ""},
		{name: "late", want: "prod"},
		{name: "old", want: "prod"},
		{name: "newer", fails: true},
		{name: "broken", fails: true},
		{name: "notjson", fails: true},
		{name: "missing", fails: true},
	} {
		got, err := st.ClusterOf(tc.name)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("ClusterOf(%s) = %q, %v; want %q, fails %v", tc.name, got, err, tc.want, tc.fails)
		}
	}
}

// FuzzClusterOf: for any config Save writes, ClusterOf says the cluster
// Load reads; on any input it returns.
func FuzzClusterOf(f *testing.F) {
	f.Add([]byte(`{"version":1,"name":"m","cluster":"c","hosts":[]}`))
	f.Add([]byte(`{"hosts":[{"ip":"1","names":["a"]}],"cluster":"c"}`))
	f.Add([]byte(`{"cluster":"a","cluster":"b"}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = clusterOf(json.NewDecoder(bytes.NewReader(data)))
		var m Machine
		if json.Unmarshal(data, &m) != nil || m.Version > ConfigVersion {
			return
		}
		m.Version = ConfigVersion
		saved, err := json.MarshalIndent(&m, "", "  ")
		if err != nil {
			return
		}
		got, err := clusterOf(json.NewDecoder(bytes.NewReader(saved)))
		if err != nil || got != m.Cluster {
			t.Fatalf("clusterOf(%s) = %q, %v; Load reads %q", saved, got, err, m.Cluster)
		}
	})
}
