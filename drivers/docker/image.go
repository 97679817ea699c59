package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/shell"
)

// NodeImageSource is where the node image's Dockerfile lives, as a build
// context docker can fetch (templates/node in shoal's source tree).
const NodeImageSource = "https://github.com/shoal-dev/shoal.git#main:templates/node"

// registryProbe is the image whose registry tells whether the engine can
// pull: the Dockerfile's default base.
const registryProbe = "docker.io/library/debian:bookworm"

// missingImageHint says the one way to build image on this kind of machine:
// with a reachable registry, docker builds templates/node (from the source
// tree when the command runs in one, else from the repository); without
// one, `make lab-image` builds it from a debootstrap base and the Debian
// mirror.
func missingImageHint(image string, registry, inSourceTree bool) string {
	switch {
	case registry && inSourceTree:
		return fmt.Sprintf("build it with 'docker build -t %s templates/node'", shell.Word(image))
	case registry:
		return fmt.Sprintf("build it with 'docker build -t %s %s'", shell.Word(image), NodeImageSource)
	case image == DefaultImage:
		return "no registry is reachable from the engine: build it offline with 'make lab-image' in shoal's source tree (Debian, as root: debootstrap and a Debian mirror)"
	}
	return fmt.Sprintf("no registry is reachable from the engine: build it offline with 'make lab-image && docker tag %s %s' in shoal's source tree (Debian, as root: debootstrap and a Debian mirror)", DefaultImage, shell.Word(image))
}

// registryReachable asks the engine to look up the base image in its
// registry, for at most 10 s.
func registryReachable(ctx context.Context, c *client.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.DistributionInspect(ctx, registryProbe, client.DistributionInspectOptions{})
	return err == nil
}
