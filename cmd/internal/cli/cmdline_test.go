package cli

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestCommandLine(t *testing.T) {
	words := []string{"cluster", "up"}
	sensitive := map[string]bool{"password": true, "token": true}
	v := func(vals ...string) GivenFlag { return GivenFlag{Name: "var", Values: vals} }
	for _, tc := range []struct {
		name  string
		flags []GivenFlag
		args  []string
		want  string
	}{
		{"no flags", nil, []string{"lab.hcl"}, "cluster up lab.hcl"},
		{"variables in order", []GivenFlag{v("workers=5", "zone=a")}, []string{"lab.hcl"}, "cluster up --var workers=5 --var zone=a lab.hcl"},
		{"sensitive value elided", []GivenFlag{v("workers=5", "password=hunter2")}, []string{"lab.hcl"}, "cluster up --var workers=5 --var password=… lab.hcl"},
		{"sensitive empty value elided too", []GivenFlag{v("token=")}, []string{"lab.hcl"}, "cluster up --var token=… lab.hcl"},
		{"a name that only starts like a sensitive one is kept", []GivenFlag{v("passwords=x")}, []string{"f"}, "cluster up --var passwords=x f"},
		{"a value holding = keeps it", []GivenFlag{v("label=a=b")}, []string{"f"}, "cluster up --var label=a=b f"},
		{"values quoted for the shell", []GivenFlag{v("motd=hi there"), {Name: "var-file", Values: []string{"my vars.hcl"}}}, []string{"my lab.hcl"},
			"cluster up --var 'motd=hi there' --var-file 'my vars.hcl' 'my lab.hcl'"},
		{"a quote in a value", []GivenFlag{v("x=it's")}, []string{"f"}, `cluster up --var 'x=it'\''s' f`},
		{"store and scalar flags", []GivenFlag{{Name: "parallel", Values: []string{"4"}}, {Name: "storage-path", Values: []string{"/s"}}}, []string{"f"},
			"cluster up --parallel 4 --storage-path /s f"},
		{"booleans", []GivenFlag{{Name: "force", Bool: true, Values: []string{"true"}}, {Name: "ca", Bool: true, Values: []string{"false"}}}, []string{"f"},
			"cluster up --force --ca=false f"},
		{"sensitive only for --var", []GivenFlag{{Name: "var-file", Values: []string{"password=x"}}}, []string{"f"}, "cluster up --var-file password=x f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CommandLine(words, tc.flags, tc.args, sensitive); got != tc.want {
				t.Errorf("CommandLine =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestGivenFlags: the flags a user gave, as parsed (root's persistent ones
// and the command's own), without those that only say how a run shows
// itself; another command gets only the root's.
func TestGivenFlags(t *testing.T) {
	root := &cobra.Command{Use: "machine"}
	root.PersistentFlags().StringP("storage-path", "s", "/default", "")
	root.PersistentFlags().String("output", "auto", "")
	root.PersistentFlags().StringArray("var", nil, "")
	var got, other string
	sub := &cobra.Command{Use: "upgrade", RunE: func(cmd *cobra.Command, args []string) error {
		got = CommandLine([]string{"machine", "upgrade"}, GivenFlags(cmd, true), args, map[string]bool{"pw": true})
		other = CommandLine([]string{"machine", "provision"}, GivenFlags(cmd, false), args, map[string]bool{"pw": true})
		return nil
	}}
	sub.Flags().String("engine-version", "", "")
	sub.Flags().Duration("drain-timeout", 0, "")
	sub.Flags().Bool("force", false, "")
	root.AddCommand(sub)
	root.SetArgs([]string{"-s", "/my store", "--output", "json", "upgrade", "--engine-version", "24.0", "--var", "pw=secret", "--var=n=2", "--force", "m1"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "machine upgrade --engine-version 24.0 --force --storage-path '/my store' --var pw=… --var n=2 m1"; got != want {
		t.Errorf("own flags:\n%s\nwant\n%s", got, want)
	}
	if want := "machine provision --storage-path '/my store' --var pw=… --var n=2 m1"; other != want {
		t.Errorf("root's flags only:\n%s\nwant\n%s", other, want)
	}
}
