package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
)

// The words after NAME: ssh's options first (as OpenSSH, which
// docker-machine runs, reads them), the remote command from the first
// word that is not one.
func TestSSHArgs(t *testing.T) {
	cases := []struct {
		argv   []string
		remote string
		opts   sshOptions
	}{
		{[]string{"m1"}, "", sshOptions{}},
		{[]string{"m1", "ls", "-la", "/"}, "ls -la /", sshOptions{}},
		{[]string{"m1", "df", "-h"}, "df -h", sshOptions{}},
		{[]string{"m1", "--", "docker", "ps", "-a"}, "docker ps -a", sshOptions{}},
		{[]string{"--", "m1", "uname", "-a"}, "uname -a", sshOptions{}},
		{[]string{"m1", "echo", "$HOME"}, "echo $HOME", sshOptions{}},
		{[]string{"m1", "--", "--"}, "--", sshOptions{}},
		{[]string{"m1", "-C", "echo", "foo"}, "echo foo", sshOptions{}},
		{[]string{"m1", "-Cq", "-v", "-x", "echo", "-C"}, "echo -C", sshOptions{}},
		{[]string{"m1", "-t", "top"}, "top", sshOptions{TTY: 1}},
		{[]string{"m1", "-tt", "top"}, "top", sshOptions{TTY: 2}},
		{[]string{"m1", "-t", "-t", "top"}, "top", sshOptions{TTY: 2}},
		{[]string{"m1", "-T"}, "", sshOptions{TTY: -1}},
		{[]string{"m1", "-A", "ssh-add", "-l"}, "ssh-add -l", sshOptions{Agent: true}},
		{[]string{"m1", "-n", "-p", "2222", "-i", "/k", "id"}, "id", sshOptions{NullStdin: true, Port: 2222, Identities: []string{"/k"}}},
		{[]string{"m1", "-p2222", "-i/k", "id"}, "id", sshOptions{Port: 2222, Identities: []string{"/k"}}},
		{[]string{"m1", "-L", "8080:localhost:80", "-R", "0.0.0.0:9000:127.0.0.1:9001", "sleep", "1"}, "sleep 1",
			sshOptions{Local: []forwardSpec{{"localhost:8080", "localhost:80"}}, Remote: []forwardSpec{{"0.0.0.0:9000", "127.0.0.1:9001"}}}},
		{[]string{"m1", "-L", "[::1]:8080:[fd00::1]:80", "true"}, "true", sshOptions{Local: []forwardSpec{{"[::1]:8080", "[fd00::1]:80"}}}},
		{[]string{"m1", "-o", "Compression=yes", "-oForwardAgent=yes", "-o", "RequestTTY force", "-o", "ConnectTimeout=5", "-o", "serveraliveinterval=7", "w"}, "w",
			sshOptions{Agent: true, TTY: 2, ConnectTimeout: 5 * time.Second, KeepAlive: 7 * time.Second}},
		{[]string{"m1", "-N", "-D", "1080", "-D", "*:1081", "-D[::1]:1082", "-o", "DynamicForward=10.0.0.1:1083"}, "", sshOptions{NoCommand: true, Dynamic: []string{"localhost:1080", ":1081", "[::1]:1082", "10.0.0.1:1083"}}},
		{[]string{"m1", "-N", "-L", "1:a:2"}, "", sshOptions{NoCommand: true, Local: []forwardSpec{{"localhost:1", "a:2"}}}},
		{[]string{"m1", "-o", "LocalForward=8080 localhost:80", "true"}, "true", sshOptions{Local: []forwardSpec{{"localhost:8080", "localhost:80"}}}},
	}
	for _, c := range cases {
		cmd := newSSH(&globals{})
		if err := cmd.ParseFlags(c.argv); err != nil {
			t.Errorf("%q: %v", c.argv, err)
			continue
		}
		args := cmd.Flags().Args()
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		if len(args) == 0 || args[0] != "m1" {
			t.Errorf("%q: args %q, want NAME m1 first", c.argv, args)
			continue
		}
		opts, words, err := parseSSHArgs(args[1:])
		if err != nil {
			t.Errorf("%q: %v", c.argv, err)
			continue
		}
		if got := remoteCommand(words); got != c.remote {
			t.Errorf("%q: remote command %q, want %q", c.argv, got, c.remote)
		}
		if !reflect.DeepEqual(opts, c.opts) {
			t.Errorf("%q: options %+v, want %+v", c.argv, opts, c.opts)
		}
	}
}

// Options the client cannot honour are refused by name: never run by the
// remote shell.
func TestSSHArgsRefused(t *testing.T) {
	cases := map[string][]string{
		"-D":                       {"-D", "socks", "true"},
		"-X":                       {"-X", "xterm"},
		"-J":                       {"-J", "jump", "true"},
		"-o StrictHostKeyChecking": {"-o", "StrictHostKeyChecking=no", "true"},
		"-o ProxyCommand":          {"-o", "ProxyCommand=nc %h %p", "true"},
		"--help":                   {"--help"},
		"-Z":                       {"-Z", "true"},
		"-p":                       {"-p"},
		"-p 0":                     {"-p", "0", "true"},
		"-L":                       {"-L", "8080:localhost", "true"},
		"-R":                       {"-R", "1080", "true"},
		"-o RequestTTY":            {"-o", "RequestTTY=maybe", "true"},
	}
	for name, argv := range cases {
		_, _, err := parseSSHArgs(argv)
		if err == nil {
			t.Errorf("%q: taken", argv)
			continue
		}
		if !strings.Contains(err.Error(), strings.Fields(name)[0]) && !strings.Contains(err.Error(), strings.TrimPrefix(name, "-o ")) {
			t.Errorf("%q: error %q does not name %s", argv, err, name)
		}
	}
}

func TestSSHHelpBeforeName(t *testing.T) {
	cmd := newSSH(&globals{})
	cmd.InitDefaultHelpFlag()
	if err := cmd.ParseFlags([]string{"--help"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := cmd.Flags().GetBool("help"); !h {
		t.Errorf("--help before NAME is machine ssh's own help")
	}
	if !strings.Contains(cmd.Use, "NAME") {
		t.Errorf("Use %q", cmd.Use)
	}
}

func FuzzParseSSHArgs(f *testing.F) {
	for _, s := range []string{"-C echo foo", "-L 8080:localhost:80 x", "-o RequestTTY=force", "-L [::1]:1:[::2]:2 y", "-tt -p22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts, words, err := parseSSHArgs(strings.Fields(s))
		if err != nil {
			return
		}
		for _, fw := range append(opts.Local, opts.Remote...) {
			if fw.Listen == "" || fw.Target == "" {
				t.Fatalf("%q: empty forward %+v", s, fw)
			}
		}
		_ = words
	})
}

// The options that change the connection get one of their own (not the
// keeper's, which carries neither -R's listeners nor -A's channels).
func TestSSHTweak(t *testing.T) {
	if sshTweak(sshOptions{TTY: 1, Local: []forwardSpec{{"a:1", "b:2"}}}) != nil {
		t.Error("-t -L changed the connection")
	}
	for _, o := range []sshOptions{{Agent: true}, {Remote: []forwardSpec{{"a:1", "b:2"}}}, {Port: 2222}, {Identities: []string{"/k"}}, {KeepAlive: time.Second}} {
		if sshTweak(o) == nil {
			t.Errorf("%+v: no connection of its own", o)
		}
	}
	cfg := sshrun.Config{}
	cfg.Port, cfg.ExtraKeyPaths = 22, []string{"/jump"}
	sshTweak(sshOptions{Port: 2222, Identities: []string{"/k"}, KeepAlive: 7 * time.Second})(&cfg)
	if cfg.Port != 2222 || !reflect.DeepEqual(cfg.ExtraKeyPaths, []string{"/k", "/jump"}) || cfg.KeepAlive != 7*time.Second {
		t.Errorf("tweaked: %+v", cfg)
	}
}

func TestSSHNoCommandNeedsForwards(t *testing.T) {
	for _, argv := range [][]string{{"ssh", "m1", "-N"}, {"ssh", "m1", "-N", "-L", "1:a:2", "ls"}} {
		if code, _, errOut := runMachine(t, nil, argv...); code != 2 || !strings.Contains(errOut, "-N") {
			t.Errorf("%q: %d %q", argv, code, errOut)
		}
	}
}
