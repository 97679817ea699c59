package provision

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Issue 10 item 3: what is not one JSON object is refused with an error
// that names the file, and never panics.
func TestMergeDaemonJSONRefuses(t *testing.T) {
	want := DaemonSettings{InsecureRegistries: []string{"reg:5000"}, Defaults: map[string]any{"log-level": "info"}}
	for _, tc := range []struct{ in, says string }{
		{"null", "holds null"},
		{"null\n", "holds null"},
		{`{"debug": true}}`, "trailing data"},
		{`{"a":1}}`, "trailing data"},
		{`{"a":1}]`, "trailing data"},
		{"{} }", "trailing data"},
		{"{}{}", "trailing data"},
		{"{} x", "trailing data"},
		{`["a"]`, "holds a list"},
		{`"x"`, "holds a string"},
		{"42", "holds a number"},
		{"true", "holds a boolean"},
		{`{"a":`, "not valid JSON"},
		{"\xef\xbb\xbf{}", "not valid JSON"},
		{`{"insecure-registries": "reg:5000"}`, "not a list"},
	} {
		out, changed, err := MergeDaemonJSON([]byte(tc.in), true, want)
		if err == nil || changed || out != nil {
			t.Errorf("%q: want an error and nothing to write, got changed=%v out=%q", tc.in, changed, out)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "/etc/docker/daemon.json") {
			t.Errorf("%q: error %q should name the file and say %q", tc.in, err, tc.says)
		}
	}
}

// A valid daemon.json without a final newline, with CRLF, or empty merges.
func TestMergeDaemonJSONShapes(t *testing.T) {
	want := DaemonSettings{InsecureRegistries: []string{"reg:5000"}}
	for _, tc := range []struct{ name, in string }{
		{"no final newline", `{"debug": true}`},
		{"crlf", "{\r\n  \"debug\": true\r\n}\r\n"},
		{"crlf no final newline", "{\r\n  \"debug\": true\r\n}"},
		{"trailing blank lines", "{\"debug\": true}\n\n\n"},
		{"empty", ""},
		{"blank", " \n"},
	} {
		out, changed, err := MergeDaemonJSON([]byte(tc.in), true, want)
		if err != nil || !changed {
			t.Fatalf("%s: changed=%v err=%v", tc.name, changed, err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: output is not JSON: %v", tc.name, err)
		}
		if strings.Contains(tc.in, "debug") && m["debug"] != true {
			t.Errorf("%s: the host's key was lost: %s", tc.name, out)
		}
		crlf := strings.Contains(tc.in, "\r\n")
		if crlf != bytes.Contains(out, []byte("\r\n")) || (crlf && bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n"))) {
			t.Errorf("%s: line ends not kept: %q", tc.name, out)
		}
		// The second run finds nothing to do.
		if again, changed, err := MergeDaemonJSON(out, true, want); err != nil || changed || !bytes.Equal(again, out) {
			t.Errorf("%s: not idempotent: changed=%v err=%v", tc.name, changed, err)
		}
	}
}

func FuzzMergeDaemonJSON(f *testing.F) {
	for _, s := range []string{"", "null", "{}", `{"debug": true}`, `{"debug": true}}`, `{"a":1}]`, "{} }", `[1]`,
		"{\r\n\"labels\": [\"x=1\"]\r\n}", `{"insecure-registries": ["reg:5000"], "n": 1.50}`, `{"labels": null}`,
		`{"registry-mirrors": "x"}`, "\xef\xbb\xbf{}", `{"a":{"b":[1,2,{"c":null}]}}`} {
		f.Add([]byte(s))
	}
	want := DaemonSettings{InsecureRegistries: []string{"reg:5000"}, RegistryMirrors: []string{"https://m.example"},
		Labels: []string{"a=1"}, Defaults: map[string]any{"log-level": "info"}}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, err := MergeDaemonJSON(in, true, want)
		if err != nil {
			if changed || out != nil {
				t.Fatalf("an error must write nothing")
			}
			return
		}
		if !changed {
			if !bytes.Equal(out, in) {
				t.Fatalf("unchanged but different")
			}
			return
		}
		var merged map[string]any
		if err := json.Unmarshal(out, &merged); err != nil || merged == nil {
			t.Fatalf("merged output is not a JSON object: %v\n%q", err, out)
		}
		// Every key of the host's file is still there.
		if len(bytes.TrimSpace(in)) > 0 {
			var orig map[string]json.RawMessage
			if err := json.Unmarshal(in, &orig); err != nil {
				t.Fatalf("accepted input Go cannot read as an object: %v", err)
			}
			for k := range orig {
				if _, ok := merged[k]; !ok {
					t.Fatalf("key %q lost", k)
				}
			}
		}
		if again, changed, err := MergeDaemonJSON(out, true, want); err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("merge is not idempotent: changed=%v err=%v", changed, err)
		}
	})
}
