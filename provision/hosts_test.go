package provision

import "testing"

func TestEditHosts(t *testing.T) {
	block := []HostEntry{{IP: "10.0.0.1", Names: []string{"master", "m"}}, {IP: "10.0.0.2", Names: []string{"slave-1"}}}
	for _, tc := range []struct {
		name, in, host string
		entries        []HostEntry
		want           string
	}{
		{
			name: "127.0.1.1 added after 127.0.0.1",
			in:   "127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
			host: "node1",
			want: "127.0.0.1 localhost\n127.0.1.1\tnode1\n::1 localhost ip6-localhost\n",
		},
		{
			name: "127.0.1.1 replaced",
			in:   "127.0.0.1 localhost\n127.0.1.1 debian.example debian\n# a comment\n",
			host: "node1",
			want: "127.0.0.1 localhost\n127.0.1.1\tnode1\n# a comment\n",
		},
		{
			name: "127.0.1.1 naming the host already is kept as it is",
			in:   "127.0.0.1 localhost\n127.0.1.1   node1.example node1\n",
			host: "node1",
			want: "127.0.0.1 localhost\n127.0.1.1   node1.example node1\n",
		},
		{
			name: "no 127.0.0.1: appended",
			in:   "::1 localhost\n",
			host: "node1",
			want: "::1 localhost\n127.0.1.1\tnode1\n",
		},
		{
			name: "empty file",
			in:   "",
			host: "node1",
			want: "127.0.1.1\tnode1\n",
		},
		{
			name:    "block added at the end, rest untouched",
			in:      "127.0.0.1 localhost\n127.0.1.1\tnode1\n\n# keep me\n192.168.1.9  nas   # mine\n",
			host:    "node1",
			entries: block,
			want: "127.0.0.1 localhost\n127.0.1.1\tnode1\n\n# keep me\n192.168.1.9  nas   # mine\n" +
				"# BEGIN shoal: cluster nodes (managed, do not edit)\n10.0.0.1\tmaster m\n10.0.0.2\tslave-1\n# END shoal\n",
		},
		{
			name: "old block dropped, the new one at the end, other lines kept",
			in: "127.0.0.1 localhost\n127.0.1.1\tnode1\n" +
				"# BEGIN shoal: cluster nodes (managed, do not edit)\n10.0.0.9\told\n# END shoal\n" +
				"192.168.1.9 nas\n",
			host:    "node1",
			entries: block,
			want: "127.0.0.1 localhost\n127.0.1.1\tnode1\n192.168.1.9 nas\n" +
				"# BEGIN shoal: cluster nodes (managed, do not edit)\n10.0.0.1\tmaster m\n10.0.0.2\tslave-1\n# END shoal\n",
		},
		{
			name: "block removed when there are no entries",
			in: "127.0.0.1 localhost\n127.0.1.1\tnode1\n" +
				"# BEGIN shoal: cluster nodes (managed, do not edit)\n10.0.0.9\told\n# END shoal\n",
			host: "node1",
			want: "127.0.0.1 localhost\n127.0.1.1\tnode1\n",
		},
		{
			name: "no trailing newline",
			in:   "127.0.0.1 localhost",
			host: "n",
			want: "127.0.0.1 localhost\n127.0.1.1\tn\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustEditHosts(t, tc.in, tc.host, tc.entries)
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if again := mustEditHosts(t, got, tc.host, tc.entries); again != got {
				t.Errorf("not idempotent: a second edit gave\n%s", again)
			}
		})
	}
}

func mustEditHosts(t *testing.T, content, hostname string, entries []HostEntry) string {
	t.Helper()
	out, err := EditHosts(content, hostname, entries)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An entry /etc/hosts cannot hold is an error, not a broken file.
func TestEditHostsRefusesHostileEntries(t *testing.T) {
	for _, e := range []HostEntry{
		{IP: "10.0.0.1", Names: []string{"n1 evil"}},
		{IP: "10.0.0.1", Names: []string{"n1\n10.6.6.6 bank"}},
		{IP: "10.0.0.1 #", Names: []string{"n1"}},
		{IP: "", Names: []string{"n1"}},
	} {
		if out, err := EditHosts("127.0.0.1 localhost\n", "n1", []HostEntry{e}); err == nil {
			t.Errorf("%q: no error, got %q", e, out)
		}
	}
}
