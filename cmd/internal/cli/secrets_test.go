package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretSource(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		p := filepath.Join(dir, strings.ReplaceAll(content, "\n", "_")+".pw")
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	for _, tc := range []struct {
		name string
		src  SecretSource
		env  string
		want string
		err  string
	}{
		{name: "file, first line only", src: SecretSource{File: file("p a$s\nsecond\n"), FileArg: "--f"}, want: "p a$s"},
		{name: "CRLF", src: SecretSource{File: file("pw\r\n"), FileArg: "--f"}, want: "pw"},
		{name: "empty file", src: SecretSource{File: file("\n"), FileArg: "--f"}, err: "no password"},
		{name: "missing file", src: SecretSource{File: filepath.Join(dir, "nope"), FileArg: "--f"}, err: "--f"},
		{name: "env", src: SecretSource{Env: "SHOAL_TEST_PW"}, env: "from env", want: "from env"},
		{name: "file wins over env", src: SecretSource{File: file("f"), FileArg: "--f", Env: "SHOAL_TEST_PW"}, env: "e", want: "f"},
		{name: "file and ask", src: SecretSource{File: file("f"), FileArg: "--f", Ask: true, AskArg: "--ask"}, err: "one way"},
		{name: "nothing", src: SecretSource{Env: "SHOAL_TEST_PW"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SHOAL_TEST_PW", tc.env)
			}
			got, err := tc.src.Read()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want an error with %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if _, ok := os.LookupEnv("SHOAL_TEST_PW"); ok {
				t.Fatal("the variable is still in the environment: child processes would inherit it")
			}
		})
	}
}
