package stack

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds Load compose files: it must return an error or a stack,
// never panic. The seeds are small: every input that parses as YAML costs
// a compile of the compose schema (a few ms in docker/cli's loader), and
// the fuzzer minimizes each new input byte by byte.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"services:\n a:\n  image: x\n  deploy:\n   mode: global\n   replicas: 2\n",
		"services:\n a:\n  image: ${X:?unset}\n  ports: [\"80:8080\"]\n  networks: [n]\nnetworks:\n n:\n  external: true\n",
		"services:\n a:\n  build: .\n  image: r/a\n  secrets: [s]\nsecrets:\n s:\n  file: ./c.yml\n",
		"services:\n a:\n  image: x\n  configs: [{source: c, target: /c, mode: 0400}]\nconfigs:\n c:\n  file: c.yml\n",
		"version: '3.8'\nservices:\n a:\n  image: x\n  deploy:\n   resources: {limits: {cpus: '0.5', memory: 1G}}\n",
		"{1: 2}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.yml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Load(Source{Name: "fz", Compose: []string{p}, Env: map[string]string{"X": "y"}}, noEnv)
		if err == nil && d == nil {
			t.Fatal("no stack and no error")
		}
	})
}
