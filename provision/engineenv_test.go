package provision

import (
	"strings"
	"testing"
)

func TestEnvDropIn(t *testing.T) {
	got, err := EnvDropIn([]string{"HTTP_PROXY=http://p:3128", `G=hello "q" $HOME 100% \n`})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[Service]\n",
		`Environment="HTTP_PROXY=http://p:3128"` + "\n",
		`Environment="G=hello \"q\" $HOME 100%% \\n"` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

func TestValidateEnv(t *testing.T) {
	if err := ValidateEnv([]string{"A=1", "_B=", "HTTP_PROXY=http://x"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	for _, bad := range []string{"A", "=1", "1A=x", "A-B=x", "A=x\ny", "A B=x"} {
		if err := ValidateEnv([]string{bad}); err == nil {
			t.Errorf("ValidateEnv(%q) took it", bad)
		}
	}
}
