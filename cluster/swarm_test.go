package cluster

import "testing"

func TestReplaceBlock(t *testing.T) {
	const begin, end = "# BEGIN shoal cluster lab", "# END shoal cluster lab"
	block := begin + "\nHost a b\n    IdentitiesOnly yes\n" + end + "\n"
	other := begin + "\nHost c\n" + end + "\n"
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", block},
		{"append", "Host x\n    User y\n", "Host x\n    User y\n" + block},
		{"append after a last line without newline", "Host x", "Host x\n" + block},
		{"replace in place", "top\n" + other + "bottom\n", "top\n" + block + "bottom\n"},
		{"replace at the start", other + "bottom\n", block + "bottom\n"},
		{"replace at the end", "top\n" + other, "top\n" + block},
		{"same block", "top\n" + block + "bottom\n", "top\n" + block + "bottom\n"},
		{"another cluster's block is kept",
			"# BEGIN shoal cluster lab2\nHost z\n# END shoal cluster lab2\n",
			"# BEGIN shoal cluster lab2\nHost z\n# END shoal cluster lab2\n" + block},
	}
	for _, c := range cases {
		got := replaceBlock(c.text, begin, end, block)
		if got != c.want {
			t.Errorf("%s: replaceBlock =\n%q\nwant\n%q", c.name, got, c.want)
		}
		// Idempotent: a second run changes nothing.
		if again := replaceBlock(got, begin, end, block); again != got {
			t.Errorf("%s: second replaceBlock changed the text:\n%q\n->\n%q", c.name, got, again)
		}
	}
}

func TestLabelList(t *testing.T) {
	got := labelList(map[string]string{"zone": "a", "tier": "apps", "a": ""})
	want := []string{"a=", "tier=apps", "zone=a"}
	if len(got) != len(want) {
		t.Fatalf("labelList = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("labelList = %v, want %v (sorted k=v)", got, want)
		}
	}
	if got := labelList(nil); got == nil || len(got) != 0 {
		t.Errorf("labelList(nil) = %#v, want an empty list", got)
	}
}

func TestRegistryAskNeeded(t *testing.T) {
	for _, tc := range []struct {
		name string
		ask  registryAsk
		want bool
	}{
		{"nothing known", registryAsk{}, true},
		{"answered the probe, nothing changed", registryAsk{probed: true}, false},
		{"answered the probe, a new registry service", registryAsk{probed: true, created: true}, true},
		{"answered the probe, the swarm changed since", registryAsk{probed: true, swarmChanged: true}, true},
		{"answered the probe, engines rolled", registryAsk{probed: true, rolled: true}, true},
		{"answered in the pipeline, others joined", registryAsk{checked: true, swarmChanged: true}, false},
		{"answered in the pipeline, engines rolled", registryAsk{checked: true, rolled: true}, true},
		{"answered in the pipeline, a new registry service", registryAsk{checked: true, created: true}, true},
		{"the registry's node, answered in the pipeline, the swarm changed", registryAsk{checked: true, regNode: true, swarmChanged: true}, true},
		{"the registry's node, answered in the pipeline, nothing changed", registryAsk{checked: true, regNode: true}, false},
		{"the registry's node, answered the probe, nothing changed", registryAsk{probed: true, regNode: true}, false},
	} {
		if got := tc.ask.needed(); got != tc.want {
			t.Errorf("%s: needed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
