package machine

import (
	"encoding/json"
	"testing"
)

func TestEngineDefaults(t *testing.T) {
	got, err := EngineDefaults([]string{"log-level=debug", "max-concurrent-downloads=3", "debug=true", "dns=8.8.8.8", "dns=1.1.1.1",
		`log-opts={"max-size":"10m"}`, "--experimental=false", "data-root=/srv/docker"}, "overlay2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"data-root":"/srv/docker","debug":true,"dns":["8.8.8.8","1.1.1.1"],"experimental":false,"log-level":"debug","log-opts":{"max-size":"10m"},"max-concurrent-downloads":3,"storage-driver":"overlay2"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if got, err := EngineDefaults(nil, ""); err != nil || got != nil {
		t.Errorf("nothing: %v %v", got, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {"Bad=x"}, {"hosts=tcp://0.0.0.0:2375"}, {"tlsverify=false"}, {"labels=a=b"},
		{"log-level=debug", "log-level=info"}, {"a b=c"}} {
		if _, err := EngineDefaults(bad, ""); err == nil {
			t.Errorf("EngineDefaults(%q) took it", bad)
		}
	}
	for _, bad := range []string{"x y", "../x", "Overlay"} {
		if _, err := EngineDefaults(nil, bad); err == nil {
			t.Errorf("storage driver %q taken", bad)
		}
	}
}

func TestValidateSANs(t *testing.T) {
	if err := ValidateSANs([]string{"docker.example.com", "10.0.0.7", "fd00::7", "*.lab.example", "node1"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"not a name", "", "a..b", "-x.example", "a/b"} {
		if err := ValidateSANs([]string{bad}); err == nil {
			t.Errorf("ValidateSANs(%q) took it", bad)
		}
	}
	names, ips := splitSANs([]string{"b.example", "10.0.0.7", "a.example"})
	if len(names) != 2 || names[0] != "a.example" || len(ips) != 1 {
		t.Errorf("splitSANs: %v %v", names, ips)
	}
}
