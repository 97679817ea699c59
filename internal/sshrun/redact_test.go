package sshrun

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/shell"
)

// TestRedactShortSecrets: a short password that is a common word leaves
// diagnostics readable (replacing it would give it away by context), and
// is still removed where it stands as a value.
func TestRedactShortSecrets(t *testing.T) {
	for _, tc := range []struct{ secret, in, want string }{
		// Words of the output stay.
		{"docker", "docker info", "docker info"},
		{"docker", "dial unix /var/run/docker.sock: connect: permission denied", "dial unix /var/run/docker.sock: connect: permission denied"},
		{"docker", "usermod -aG docker hadoop", "usermod -aG docker hadoop"},
		{"vagrant", "/home/vagrant/.ssh/authorized_keys", "/home/vagrant/.ssh/authorized_keys"},
		{"123456", "pid 1234567 took 123456 bytes", "pid 1234567 took 123456 bytes"},
		// Where it stands as a value it goes.
		{"docker", "docker", "[REDACTED]"},
		{"docker", "line one\n  docker\r\nline three", "line one\n  [REDACTED]\r\nline three"},
		{"docker", `sudo_password = "docker"`, `sudo_password = "[REDACTED]"`},
		{"docker", "pw='docker' next", "pw='[REDACTED]' next"},
		{"docker", "PASSWORD=docker other=1", "PASSWORD=[REDACTED] other=1"},
		{"docker", "Password: docker", "Password: [REDACTED]"},
		// Not a plain word: gone as a whole token, kept inside others.
		{"s3cret", "pw s3cret and more", "pw [REDACTED] and more"},
		{"s3cret", "xs3cret s3cretx s3cret.", "xs3cret s3cretx [REDACTED]."},
		{"p'w\"1", `got 'p'\''w"1' and "p'w\"1"`, `got [REDACTED] and "[REDACTED]"`},
		{"password", "user hadoop needs passwordless sudo, or its sudo password", "user hadoop needs passwordless sudo, or its sudo password"},
		{"password", "password", "[REDACTED]"},
		// Long secrets go wherever they are.
		{"correcthorsebatterystaple", "xcorrecthorsebatterystaplex", "x[REDACTED]x"},
		{"hunter2hunter2", "xhunter2hunter2x", "x[REDACTED]x"},
	} {
		r := &Redactor{}
		r.Add(tc.secret)
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("secret %q: Redact(%q)\n got %q\nwant %q", tc.secret, tc.in, got, tc.want)
		}
	}
}

// TestRedactEveryForm: however shoal or a tool writes a secret (as is, on
// a line of its own, shell-quoted, in Go or JSON quotes, as a value), the
// text left has none of it.
func TestRedactEveryForm(t *testing.T) {
	for _, secret := range []string{"docker", "123456", "password", "s3cret", "p'w\"1\\", "a b", "correct horse 'battery' \"staple\"\\n", "tok-$x`y`"} {
		j, _ := json.Marshal(secret)
		forms := []string{
			secret,
			secret + "\n",
			"line\n" + secret + "\nline",
			shell.Quote(secret),
			fmt.Sprintf("error: %q", secret),
			fmt.Sprintf("error: %q.", secret),
			`{"password":` + string(j) + `}`,
			"PW=" + secret,
			"Pass: " + secret,
		}
		r := &Redactor{}
		r.Add(secret)
		for _, f := range forms {
			got := r.Redact(f)
			q := fmt.Sprintf("%q", secret)
			if strings.Contains(got, secret) || strings.Contains(got, q[1:len(q)-1]) || strings.Contains(got, string(j[1:len(j)-1])) || !strings.Contains(got, "[REDACTED]") {
				t.Errorf("secret %q: Redact(%q) = %q", secret, f, got)
			}
		}
	}
}

// FuzzRedact: a secret on a line of its own (how a password on stdin comes
// back) never survives, nor a long one anywhere.
func FuzzRedact(f *testing.F) {
	f.Add("docker", "docker info\n")
	f.Add("s3cret", "'s3cret'")
	f.Add("a-long-token", "xa-long-tokenx")
	f.Fuzz(func(t *testing.T, secret, text string) {
		if secret == "" || strings.Contains(secret, "\n") || strings.Contains(redacted, secret) {
			return
		}
		r := &Redactor{}
		r.Add(secret)
		if got := r.Redact(text + "\n" + secret + "\n"); strings.HasSuffix(got, "\n"+secret+"\n") {
			t.Fatalf("a line of its own survived: %q", got)
		}
		if len(secret) >= longSecret && !(plainWord(secret) && len(secret) < longWord) && strings.Contains(r.Redact(text+secret), secret) && !strings.Contains(text, secret[1:]) {
			t.Fatalf("a long secret survived in %q", text+secret)
		}
	})
}
