package main

import (
	"strings"
	"testing"
)

func TestSSHArgs(t *testing.T) {
	cases := []struct {
		argv   []string
		name   string
		remote string
	}{
		{[]string{"m1"}, "m1", ""},
		{[]string{"m1", "ls", "-la", "/"}, "m1", "ls -la /"},
		{[]string{"m1", "df", "-h"}, "m1", "df -h"},
		{[]string{"m1", "--", "docker", "ps", "-a"}, "m1", "docker ps -a"},
		{[]string{"--", "m1", "uname", "-a"}, "m1", "uname -a"},
		{[]string{"m1", "--help"}, "m1", "--help"},
		{[]string{"m1", "echo", "$HOME"}, "m1", "echo $HOME"},
		{[]string{"m1", "--", "--"}, "m1", "--"},
	}
	for _, c := range cases {
		cmd := newSSH(&globals{})
		if err := cmd.ParseFlags(c.argv); err != nil {
			t.Errorf("%q: %v", c.argv, err)
			continue
		}
		args := cmd.Flags().Args()
		if len(args) == 0 || args[0] != c.name {
			t.Errorf("%q: args %q, want NAME %s first", c.argv, args, c.name)
			continue
		}
		if got := remoteCommand(args[1:]); got != c.remote {
			t.Errorf("%q: remote command %q, want %q", c.argv, got, c.remote)
		}
		if h, _ := cmd.Flags().GetBool("help"); h {
			t.Errorf("%q: parsed as a request for help", c.argv)
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
