package provision

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestLockWait(t *testing.T) {
	holders := []string{"unattended-upgr (pid 812)"}
	for _, tc := range []struct {
		name          string
		holders       []string
		waited, bound time.Duration
		wait          bool
		errHas        string
	}{
		{"free", nil, 0, time.Minute, false, ""},
		{"free after a while", nil, 2 * time.Hour, time.Minute, false, ""},
		{"held: wait", holders, 10 * time.Second, time.Minute, true, ""},
		{"held past the bound", holders, time.Minute, time.Minute, false, "still held by unattended-upgr (pid 812) after 1m0s"},
	} {
		wait, err := lockWait(tc.holders, tc.waited, tc.bound)
		if wait != tc.wait || (tc.errHas == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: got %v %v, want %v %q", tc.name, wait, err, tc.wait, tc.errHas)
		}
	}
}

// TestLockWaitBounded: a lock that is never let go stops provisioning at
// the bound, with who holds it, before any package command ran.
func TestLockWaitBounded(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/debian12-lock.txt")
	h := newFakeHost(t, fix)
	h.lockHeld = 1 << 30
	spec := fix.spec()
	spec.LockWait = 20 * time.Millisecond
	_, err := Provision(context.Background(), h, spec, h.progress)
	if err == nil || !strings.Contains(err.Error(), "still held by unattended-upgr (pid 812)") || !strings.Contains(err.Error(), `step "docker-install"`) {
		t.Fatalf("want the lock error of docker-install, got %v", err)
	}
	for _, l := range h.log {
		if strings.Contains(l, "apt-get") {
			t.Errorf("apt ran while the lock was held: %s", l)
		}
	}
	waits := 0
	for _, l := range h.log {
		if strings.HasPrefix(l, "info:  docker-install: waiting for the package lock, held by unattended-upgr") {
			waits++
		}
	}
	if waits == 0 {
		t.Errorf("no progress while waiting:\n%s", strings.Join(h.log, "\n"))
	}
}

func TestOverlayWithoutSELinux(t *testing.T) {
	for _, tc := range []struct {
		name, facts string
		want        bool
	}{
		{"new kernel", "@@overlay-selinux\nyes\n", false},
		{"unknown", "", false},
		{"old kernel, default driver", "@@overlay-selinux\nno\n", true},
		{"old kernel, overlay2 set", "@@overlay-selinux\nno\n@@daemon-json\n{\"storage-driver\": \"overlay2\"}\n", true},
		{"old kernel, devicemapper", "@@overlay-selinux\nno\n@@daemon-json\n{\"storage-driver\": \"devicemapper\"}\n", false},
	} {
		h := &Host{Facts: testFacts(tc.facts + "@@end\n")}
		if got := overlayWithoutSELinux(h); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPlanSaysWhatGoes: the plan names the packages replace_conflicting
// removes and the files os_mirror sets aside, before anything changes.
func TestPlanSaysWhatGoes(t *testing.T) {
	for file, want := range map[string]string{
		"rocky9-podman-replace.txt": "docker-install (removes podman, buildah, runc first: replace_conflicting)",
		"centos7-eol-mirror.txt":    "os-repos (sets aside /etc/yum.repos.d/CentOS-Base.repo for https://mirrors.aliyun.com/centos-vault)",
	} {
		fix := loadFixture(t, "testdata/hosts/"+file)
		h := newFakeHost(t, fix)
		host, err := Prepare(context.Background(), h, fix.spec())
		if err != nil {
			t.Fatal(err)
		}
		steps, err := Plan(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range steps {
			found = found || s == want
		}
		if !found {
			t.Errorf("%s: the plan %q lacks %q", file, steps, want)
		}
		for _, l := range h.log {
			if !strings.Contains(l, "<facts probe") {
				t.Errorf("%s: planning sent %s", file, l)
			}
		}
	}
}
