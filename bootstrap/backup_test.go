package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/shell"
)

func TestPickBackupSource(t *testing.T) {
	mgr := func(id string, leader, reachable bool) Member {
		return Member{ID: id, Hostname: "h-" + id, Role: RoleManager, Leader: leader, Reachable: reachable}
	}
	wk := Member{ID: "w", Hostname: "h-w", Role: RoleWorker}
	for _, tc := range []struct {
		name    string
		members []Member
		want    string
		pause   bool
		errHas  string
	}{
		{"one manager: the leader, paused", []Member{mgr("a", true, true), wk}, "a", true, ""},
		{"two managers: the leader, paused", []Member{mgr("a", false, true), mgr("b", true, true)}, "b", true, ""},
		{"three: a follower, first by hostname", []Member{mgr("c", false, true), mgr("a", true, true), mgr("b", false, true)}, "b", false, ""},
		{"three, one down: stopping another loses quorum", []Member{mgr("a", true, true), mgr("b", false, true), mgr("c", false, false)}, "", false, "would lose the Raft quorum"},
		{"five, one down: fine", []Member{mgr("a", true, true), mgr("b", false, false), mgr("c", false, true), mgr("d", false, true), mgr("e", false, true)}, "c", false, ""},
		{"no leader", []Member{mgr("a", false, false), wk}, "", false, "no leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PickBackupSource(tc.members)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want an error with %q, got %+v %v", tc.errHas, got, err)
				}
				return
			}
			if err != nil || got.ID != tc.want || got.Pause != tc.pause {
				t.Fatalf("got %+v %v, want %s pause=%v", got, err, tc.want, tc.pause)
			}
		})
	}
}

func TestGoneManagers(t *testing.T) {
	members := []Member{
		{ID: "self", Role: RoleManager, Reachable: true},
		{ID: "m2", Role: RoleManager},
		{ID: "m3", Role: RoleManager},
		{ID: "n2", Role: RoleManager, Reachable: true}, // joined the restored swarm
		{ID: "w1", Role: RoleWorker},
	}
	var ids []string
	for _, m := range GoneManagers(members, "self") {
		ids = append(ids, m.ID)
	}
	if !reflect.DeepEqual(ids, []string{"m2", "m3"}) {
		t.Errorf("gone managers %v", ids)
	}
}

func TestLabelsBack(t *testing.T) {
	man := Manifest{Nodes: []ManifestNode{
		{Hostname: "w1", Labels: map[string]string{"tier": "back", "zone": "a"}},
		{Hostname: "m-old", Labels: map[string]string{"x": "y"}},
	}}
	members := []Member{{ID: "new-w1", Hostname: "w1"}, {ID: "n1", Hostname: "n1"}}
	have := map[string]map[string]string{"new-w1": {"zone": "from-file"}}
	got := LabelsBack(man, members, have)
	want := map[string]map[string]string{"new-w1": {"tier": "back"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (a label the node has wins; hosts not there get none)", got, want)
	}
}

func TestNotRotated(t *testing.T) {
	nodes := []NodeTrust{{"w2", "OLD"}, {"m1", "NEW\n"}, {"w1", "OLD"}}
	if got := NotRotated(nodes, "NEW"); !reflect.DeepEqual(got, []string{"w1", "w2"}) {
		t.Errorf("got %v", got)
	}
	if got := NotRotated(nodes[1:2], "NEW"); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

func TestParseRoom(t *testing.T) {
	if r, err := parseRoom("1024\n2048\n"); err != nil || r.Used != 1<<20 || r.Free != 2<<20 {
		t.Errorf("%+v %v", r, err)
	}
	for _, bad := range []string{"", "12", "a\n1", "1\n2\n3", "-1\n5"} {
		if _, err := parseRoom(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

// swarmTar packs entries (name, type) as a tar.gz.
func swarmTar(t testing.TB, entries ...tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size == 1 {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestCheckSwarmTar: a restore unpacks only swarm/ with its folders and
// files: nothing outside it, no .., no absolute path, no links.
func TestCheckSwarmTar(t *testing.T) {
	dir := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o700} }
	reg := func(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o600} }
	if err := CheckSwarmTar(bytes.NewReader(swarmTar(t, dir("swarm/"), dir("swarm/raft/"), reg("swarm/raft/wal-v3-encrypted/0.wal"), reg("swarm/state.json")))); err != nil {
		t.Fatalf("a Raft state refused: %v", err)
	}
	for name, h := range map[string]tar.Header{
		"outside":         reg("etc/passwd"),
		"absolute":        reg("/var/lib/docker/swarm/x"),
		"dotdot":          reg("swarm/../../etc/cron.d/x"),
		"prefix only":     reg("swarmy/x"),
		"symlink":         {Name: "swarm/x", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		"hardlink":        {Name: "swarm/x", Typeflag: tar.TypeLink, Linkname: "etc/shadow"},
		"device":          {Name: "swarm/x", Typeflag: tar.TypeChar},
		"docker's images": dir("image/"),
	} {
		t.Run(name, func(t *testing.T) {
			if err := CheckSwarmTar(bytes.NewReader(swarmTar(t, dir("swarm/"), h))); err == nil {
				t.Fatalf("%q taken", h.Name)
			}
		})
	}
	if err := CheckSwarmTar(bytes.NewReader([]byte("plain"))); err == nil {
		t.Error("not a tar.gz taken")
	}
}

func FuzzCheckSwarmTar(f *testing.F) {
	f.Add(swarmTar(f, tar.Header{Name: "swarm/", Typeflag: tar.TypeDir}, tar.Header{Name: "swarm/a", Typeflag: tar.TypeReg}))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckSwarmTar(bytes.NewReader(data)) != nil {
			return
		}
		// What is taken unpacks under swarm/ only.
		zr, _ := gzip.NewReader(bytes.NewReader(data))
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				return
			}
			c := path.Clean(h.Name)
			if c != "swarm" && !strings.HasPrefix(c, "swarm/") || strings.Contains(h.Name, "..") && slices.Contains(strings.Split(h.Name, "/"), "..") {
				t.Fatalf("took %q", h.Name)
			}
		}
	})
}

// TestBackupJob runs the copy's job with stand-ins for systemctl and tar:
// dockerd is started again when the pack fails, and the status says which
// step failed; the pack goes to the login user.
func TestBackupJob(t *testing.T) {
	for _, c := range []struct {
		name     string
		tarFails bool
		stopFail bool
		want     string
		calls    string
	}{
		{"copy", false, false, "0", "stop docker.socket|stop docker|tar|start docker|start docker.socket|chown me|"},
		{"pack fails", true, false, "2", "stop docker.socket|stop docker|tar|start docker|start docker.socket|"},
		{"stop fails", false, true, "1", "stop docker.socket|stop docker|start docker|start docker.socket|"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin, dir := t.TempDir(), filepath.Join(t.TempDir(), "job")
			calls := filepath.Join(bin, "calls")
			stub := func(name, body string) {
				os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755)
			}
			stopExit, tarExit := "0", "0"
			if c.stopFail {
				stopExit = "1"
			}
			if c.tarFails {
				tarExit = "1"
			}
			stub("systemctl", `printf '%s|' "$*" >>`+calls+`; [ "$*" != "stop docker" ] || exit `+stopExit)
			stub("tar", `printf 'tar|' >>`+calls+`; exit `+tarExit)
			stub("chown", `printf 'chown %s|' "$1" >>`+calls)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", backupJob(dir, "me"))
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			status, _ := os.ReadFile(filepath.Join(dir, "status"))
			got, _ := os.ReadFile(calls)
			if strings.TrimSpace(string(status)) != c.want || string(got) != c.calls {
				t.Errorf("status %q calls %q, want %q %q", status, got, c.want, c.calls)
			}
		})
	}
}

// TestLaunchJobOutlivesTheSession: the launch returns at once and the job
// goes on in a session of its own (the stand-in for systemd-run's unit
// when systemd does not run, as here).
func TestLaunchJobOutlivesTheSession(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: the launch would make a unit")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	dir := filepath.Join(t.TempDir(), "job")
	script := "sleep 1; echo 0 > " + shell.Quote(dir+"/status")
	start := time.Now()
	if out, err := exec.Command("sh", "-c", launchJob(dir, "u", script)).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Fatal("the launch waited for the job")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("job folder %v %v", fi, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil && strings.TrimSpace(string(b)) == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job did not finish after the launching shell ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The folder exists: a second launch with it is refused (nothing planted is used).
	if err := exec.Command("sh", "-c", launchJob(dir, "u", "true")).Run(); err == nil {
		t.Error("launched into a folder that was there")
	}
	// A job that ended and whose folder stayed (its shoal killed) is
	// cleared by the next launch; one still running (no status) is not.
	parent := filepath.Dir(dir)
	ended, running := filepath.Join(parent, "shoal-backup-a"), filepath.Join(parent, "shoal-backup-b")
	os.MkdirAll(ended, 0o700)
	os.WriteFile(filepath.Join(ended, "status"), []byte("0\n"), 0o600)
	os.MkdirAll(running, 0o700)
	if out, err := exec.Command("sh", "-c", launchJob(filepath.Join(parent, "shoal-backup-c"), "u", "true")).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(ended); err == nil {
		t.Error("an ended job's folder stayed")
	}
	if _, err := os.Stat(running); err != nil {
		t.Error("a running job's folder was removed")
	}
}
