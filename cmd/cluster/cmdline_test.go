package main

import "testing"

func TestCommandLine(t *testing.T) {
	words := []string{"cluster", "up"}
	sensitive := map[string]bool{"password": true, "token": true}
	v := func(vals ...string) givenFlag { return givenFlag{Name: "var", Values: vals} }
	for _, tc := range []struct {
		name  string
		flags []givenFlag
		args  []string
		want  string
	}{
		{"no flags", nil, []string{"lab.hcl"}, "cluster up lab.hcl"},
		{"variables in order", []givenFlag{v("workers=5", "zone=a")}, []string{"lab.hcl"}, "cluster up --var workers=5 --var zone=a lab.hcl"},
		{"sensitive value elided", []givenFlag{v("workers=5", "password=hunter2")}, []string{"lab.hcl"}, "cluster up --var workers=5 --var password=… lab.hcl"},
		{"sensitive empty value elided too", []givenFlag{v("token=")}, []string{"lab.hcl"}, "cluster up --var token=… lab.hcl"},
		{"a name that only starts like a sensitive one is kept", []givenFlag{v("passwords=x")}, []string{"f"}, "cluster up --var passwords=x f"},
		{"a value holding = keeps it", []givenFlag{v("label=a=b")}, []string{"f"}, "cluster up --var label=a=b f"},
		{"values quoted for the shell", []givenFlag{v("motd=hi there"), {Name: "var-file", Values: []string{"my vars.hcl"}}}, []string{"my lab.hcl"},
			"cluster up --var 'motd=hi there' --var-file 'my vars.hcl' 'my lab.hcl'"},
		{"a quote in a value", []givenFlag{v("x=it's")}, []string{"f"}, `cluster up --var 'x=it'\''s' f`},
		{"store and scalar flags", []givenFlag{{Name: "parallel", Values: []string{"4"}}, {Name: "storage-path", Values: []string{"/s"}}}, []string{"f"},
			"cluster up --parallel 4 --storage-path /s f"},
		{"booleans", []givenFlag{{Name: "force", Bool: true, Values: []string{"true"}}, {Name: "ca", Bool: true, Values: []string{"false"}}}, []string{"f"},
			"cluster up --force --ca=false f"},
		{"sensitive only for --var", []givenFlag{{Name: "var-file", Values: []string{"password=x"}}}, []string{"f"}, "cluster up --var-file password=x f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commandLine(words, tc.flags, tc.args, sensitive); got != tc.want {
				t.Errorf("commandLine =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
