package deploy

import (
	"strings"
	"testing"
)

func TestFollow(t *testing.T) {
	cases := []struct {
		name, stream, wantErr string
	}{
		{"a build that ends well", `{"stream":"Step 1/2 : FROM busybox\n"}{"stream":"Successfully built 1234\n"}`, ""},
		{"a build that fails says why and what came before",
			`{"stream":"Step 1/2 : FROM busybox\n"}{"stream":"Step 2/2 : RUN false\n"}{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"x"}`,
			"The command '/bin/sh -c false' returned a non-zero code: 1 (last output: Step 1/2 : FROM busybox | Step 2/2 : RUN false)"},
		{"a push refused", `{"status":"The push refers to repository [r:5000/app]"}{"errorDetail":{"message":"connection refused"}}`, "connection refused"},
		{"a stream cut short", `{"stream":"Step 1/2`, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := follow(strings.NewReader(c.stream))
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("follow: %v", err)
				}
				return
			}
			if err == nil || err.Error() != c.wantErr {
				t.Fatalf("follow: %v, want %q", err, c.wantErr)
			}
		})
	}
}
