package provision

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMergeDaemonJSON(t *testing.T) {
	decode := func(t *testing.T, b []byte) map[string]any {
		t.Helper()
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("merged daemon.json is not JSON: %v\n%s", err, b)
		}
		return m
	}

	t.Run("keys kept, lists unions", func(t *testing.T) {
		cur := `{"log-level": "warn", "insecure-registries": ["old:5000", "both:5000"], "labels": ["a=1"]}`
		out, changed, err := MergeDaemonJSON([]byte(cur), true, DaemonSettings{
			InsecureRegistries: []string{"both:5000", "new:5000"},
			RegistryMirrors:    []string{"https://mirror.example"},
			Labels:             []string{"a=1"},
			Defaults:           map[string]any{"log-level": "debug", "selinux-enabled": true},
		})
		if err != nil || !changed {
			t.Fatalf("changed=%v err=%v", changed, err)
		}
		m := decode(t, out)
		if m["log-level"] != "warn" {
			t.Errorf("the host's log-level was overridden by a default: %v", m["log-level"])
		}
		if m["selinux-enabled"] != true {
			t.Errorf("a missing default was not set: %v", m)
		}
		if got := toStrings(m["insecure-registries"]); strings.Join(got, ",") != "old:5000,both:5000,new:5000" {
			t.Errorf("insecure-registries %v: want the host's first, then the new one, once each", got)
		}
		if got := toStrings(m["registry-mirrors"]); strings.Join(got, ",") != "https://mirror.example" {
			t.Errorf("registry-mirrors %v", got)
		}
		if got := toStrings(m["labels"]); strings.Join(got, ",") != "a=1" {
			t.Errorf("labels %v", got)
		}
		if !strings.HasSuffix(string(out), "}\n") {
			t.Errorf("want a trailing newline: %q", out)
		}
	})

	t.Run("no change when nothing to add", func(t *testing.T) {
		cur := "{\n    \"insecure-registries\": [\"a:5000\"],\n    \"selinux-enabled\": false\n}\n"
		out, changed, err := MergeDaemonJSON([]byte(cur), true, DaemonSettings{
			InsecureRegistries: []string{"a:5000"},
			Defaults:           map[string]any{"selinux-enabled": true},
		})
		if err != nil || changed || string(out) != cur {
			t.Errorf("changed=%v err=%v out=%q: the file must stay byte for byte", changed, err, out)
		}
	})

	t.Run("numbers preserved", func(t *testing.T) {
		cur := `{"max-concurrent-downloads": 3, "mtu": 1450, "big": 12345678901234567890, "ratio": 0.75}`
		out, changed, err := MergeDaemonJSON([]byte(cur), true, DaemonSettings{Labels: []string{"x=y"}})
		if err != nil || !changed {
			t.Fatalf("changed=%v err=%v", changed, err)
		}
		for _, want := range []string{`"max-concurrent-downloads": 3,`, `"mtu": 1450`, `"big": 12345678901234567890`, `"ratio": 0.75`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("number not kept as written: want %s in\n%s", want, out)
			}
		}
	})

	t.Run("invalid JSON is an error", func(t *testing.T) {
		for _, cur := range []string{"{\"log-level\": \"warn\",\n", "not json", `{"a": 1} {"b": 2}`, `["a"]`} {
			_, _, err := MergeDaemonJSON([]byte(cur), true, DaemonSettings{Labels: []string{"x=y"}})
			if err == nil || !strings.Contains(err.Error(), "not valid JSON") || !strings.Contains(err.Error(), "will not overwrite") {
				t.Errorf("%q: want a not-valid-JSON error, got %v", cur, err)
			}
		}
	})

	t.Run("a list key that is not a list", func(t *testing.T) {
		_, _, err := MergeDaemonJSON([]byte(`{"insecure-registries": "a:5000"}`), true, DaemonSettings{InsecureRegistries: []string{"b:5000"}})
		if err == nil || !strings.Contains(err.Error(), "insecure-registries") {
			t.Errorf("want an error naming the key, got %v", err)
		}
	})

	t.Run("no file, empty file", func(t *testing.T) {
		for _, tc := range []struct {
			cur    string
			exists bool
		}{{"", false}, {"", true}, {"  \n", true}} {
			out, changed, err := MergeDaemonJSON([]byte(tc.cur), tc.exists, DaemonSettings{InsecureRegistries: []string{"a:5000"}})
			if err != nil || !changed {
				t.Fatalf("%+v: changed=%v err=%v", tc, changed, err)
			}
			if got := toStrings(decode(t, out)["insecure-registries"]); strings.Join(got, ",") != "a:5000" {
				t.Errorf("%+v: %v", tc, got)
			}
		}
		out, changed, err := MergeDaemonJSON(nil, false, DaemonSettings{})
		if err != nil || changed || len(out) != 0 {
			t.Errorf("nothing wanted and no file: changed=%v err=%v out=%q", changed, err, out)
		}
	})

	t.Run("the caller's defaults are not changed", func(t *testing.T) {
		defaults := map[string]any{"log-level": "info"}
		h := &Host{Spec: Spec{Daemon: DaemonSettings{Defaults: defaults}}, Facts: testFacts("@@selinux\nEnforcing\n@@end\n"), Family: rhelFamily()}
		if d := h.daemonSettings(); d.Defaults["selinux-enabled"] != true {
			t.Errorf("want selinux-enabled on an enforcing RHEL host: %v", d.Defaults)
		}
		if _, ok := defaults["selinux-enabled"]; ok {
			t.Errorf("daemonSettings wrote into the Spec's map")
		}
	})
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
