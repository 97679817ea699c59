package deploy

import (
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

func TestWithMTU(t *testing.T) {
	cases := []struct {
		name    string
		in      client.NetworkCreateOptions
		mtu     int
		wantMTU string
	}{
		{"overlay without an MTU takes the swarm's", client.NetworkCreateOptions{Driver: "overlay"}, 1350, "1350"},
		{"no driver is overlay in a stack", client.NetworkCreateOptions{Options: map[string]string{"encrypted": ""}}, 1350, "1350"},
		{"the file's own MTU wins", client.NetworkCreateOptions{Driver: "overlay", Options: map[string]string{MTUOption: "1400"}}, 1350, "1400"},
		{"no overlay_mtu: Docker's", client.NetworkCreateOptions{Driver: "overlay"}, 0, ""},
		{"another driver is left alone", client.NetworkCreateOptions{Driver: "macvlan"}, 1350, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(c.in.Options)
			got := WithMTU(c.in, c.mtu)
			if got.Options[MTUOption] != c.wantMTU {
				t.Errorf("MTU option %q, want %q", got.Options[MTUOption], c.wantMTU)
			}
			if len(c.in.Options) != before {
				t.Errorf("the stack's own options were changed: %v", c.in.Options)
			}
			if c.in.Options["encrypted"] != got.Options["encrypted"] {
				t.Errorf("other options lost: %v", got.Options)
			}
		})
	}
}

func TestDigestInAndBuiltFrom(t *testing.T) {
	have := image.InspectResponse{
		RepoDigests: []string{"other:5000/web@sha256:aaa", "m1:5000/web@sha256:bbb"},
		Config:      &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Labels: map[string]string{LabelContext: "sha256:ctx"}}},
	}
	cases := []struct{ ref, want string }{
		{"m1:5000/web:1", "m1:5000/web@sha256:bbb"},
		{"other:5000/web", "other:5000/web@sha256:aaa"},
		{"m1:5000/api:1", ""},
		{"not a ref", ""},
	}
	for _, c := range cases {
		if got := digestIn(have, c.ref); got != c.want {
			t.Errorf("digestIn(%q) = %q, want %q", c.ref, got, c.want)
		}
	}
	if !builtFrom(have, "sha256:ctx") || builtFrom(have, "sha256:other") || builtFrom(image.InspectResponse{}, "sha256:ctx") {
		t.Errorf("builtFrom does not follow the context label")
	}
}
