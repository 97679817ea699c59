# shoal: `make lab` runs the main job on the built-in default (container
# hosts on the local Docker Engine); `make test` runs every test, setting up
# what it needs (Debian packages, dockerd, libvirtd, the lab images).

GO        ?= go
# No build tags: a plain `go build ./cmd/...` or `go install` has every
# driver (the libvirt driver speaks libvirtd's protocol in pure Go, so it
# needs neither cgo nor libvirt to build). TAGS is for experiments only.
TAGS      ?=
TAGFLAG    = $(if $(TAGS),-tags '$(TAGS)')
GOFLAGS_BUILD = $(TAGFLAG) -trimpath -ldflags "-X main.version=$(shell git describe --always --dirty 2>/dev/null || echo dev)"
LAB       := test/lab/lab.sh
LIBVIRT_LAB := test/lab/libvirt.sh
PKGS_UNIT  = $(shell $(GO) list $(TAGFLAG) ./... | grep -v /test/e2e)
E2E_TIMEOUT ?= 40m

# make test fuzzes each target for a number of runs, not a time: with a
# duration, Go 1.26's fuzz coordinator can report "context deadline exceeded"
# as a failure when the time runs out mid-run (go.dev/issue/75804), which
# failed CI with no failing input. 20000 runs take 1-12 s per target here;
# a package's testdata/fuzz-short ("FuzzName 2000x" lines) lowers it for a
# slow target (stack's FuzzLoad compiles docker's compose schema per input).
FUZZTIME_SHORT ?= 20000x
FUZZTIME  ?= 60s

.PHONY: dist build build-nocgo test unit fuzz fuzz-short e2e e2e-containers e2e-libvirt lab lab-setup lab-image lab-archive lab-libvirt-image lab-docker lab-clean bench bench-scale lint clean

build:
	$(GO) build $(GOFLAGS_BUILD) -o bin/ ./cmd/...

# Release files in dist/: per target a tarball (both binaries, man pages,
# completion), for Linux a .deb and an .rpm (nfpm, build/dist/nfpm.yaml),
# and SHA256SUMS. The same commit gives the same bytes (docs/install.md).
DIST_TARGETS ?= linux/amd64,linux/arm64,darwin/amd64,darwin/arm64
dist:
	$(GO) run ./build/dist -out dist -targets $(DIST_TARGETS)

# What `go install .../cmd/machine@latest` does on a machine without a C
# compiler: every command builds with cgo off (the e2e tests then check that
# bin/machine has the libvirt driver and no build tags).
build-nocgo:
	CGO_ENABLED=0 $(GO) build ./cmd/...

# The libvirt driver's real-VM tests run with the end-to-end tests.
unit:
	$(GO) test $(TAGFLAG) -count=1 -skip 'TestIntegration' $(PKGS_UNIT)

# Every Go fuzz target (func FuzzXxx in a _test.go), one at a time: go test
# -fuzz takes one package and one target. fuzz-short is part of make test;
# fuzz runs each longer. A failing input lands in the package's
# testdata/fuzz/ and is replayed by every later go test.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME_SHORT)

fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME)

fuzz-run:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); do \
			n=$(FUZZ_FOR); \
			if [ "$(FUZZ_FOR)" = "$(FUZZTIME_SHORT)" ] && [ -f $$dir/testdata/fuzz-short ]; then \
				n=$$(awk -v f=$$f '$$1 == f {print $$2}' $$dir/testdata/fuzz-short); n=$${n:-$(FUZZ_FOR)}; \
			fi; \
			echo "fuzz $$dir $$f for $$n"; \
			$(GO) test $(TAGFLAG) -run '^$$' -fuzz "^$$f$$" -fuzztime $$n $$dir; \
		done; \
	done

# docker.io, debootstrap and a running dockerd: all the container lab needs
# (and rpm, to read the .rpm that make dist builds).
lab-docker:
	bash $(LAB) setup

# Everything the tests need, libvirtd and QEMU too.
lab-setup: lab-docker
	bash $(LIBVIRT_LAB) setup

lab-libvirt-image: lab-setup
	bash $(LIBVIRT_LAB) image

# The lab's images: a Debian base by debootstrap, and templates/node/Dockerfile
# built on it (shoal-lab/node:bookworm, tagged shoal/node:bookworm too).
lab-image: lab-docker
	bash $(LAB) images

lab-archive: lab-docker
	bash $(LAB) archive

# e2e runs the built binaries against real hosts (containers with systemd,
# sshd and dockerd; libvirt VMs under QEMU) that the lab scripts make.
# The container hosts and the VMs are tested side by side: both spend most
# of their time waiting (on boots, dockerd, swarm), so the whole takes about
# as long as the longer of the two. Each side's output comes whole when it ends.
e2e: build build-nocgo lab-image lab-archive lab-libvirt-image
	$(MAKE) --no-print-directory -j2 --output-sync=target e2e-containers e2e-libvirt

e2e-containers:
	SHOAL_E2E=1 SHOAL_BIN_DIR=$(CURDIR)/bin $(GO) test $(TAGFLAG) -count=1 -v -timeout $(E2E_TIMEOUT) -skip 'TestLibvirt' ./test/e2e/

e2e-libvirt:
	SHOAL_E2E=1 SHOAL_LIBVIRT_E2E=1 SHOAL_BIN_DIR=$(CURDIR)/bin $(GO) test $(TAGFLAG) -count=1 -v -timeout $(E2E_TIMEOUT) -run 'TestIntegration|TestLibvirt' ./drivers/libvirt/ ./test/e2e/

test: lab-setup lint unit fuzz-short e2e

# The main job on the built-in default: a swarm of 3 managers and 2 workers,
# each a container on this machine running its own dockerd, with a registry.
lab: build lab-image lab-archive
	./bin/cluster up examples/lab.hcl
	./bin/machine ls

lab-clean:
	-./bin/cluster down lab
	bash $(LAB) clean

# A benchmark, not a test: at N = 3, 10 and 30 adopted lab hosts (BENCH_SIZES),
# the floor (test/bench/floor.sh) and cluster up's first run and no-op re-run
# (at once, settled, cold), alternately, BENCH_RUNS times each on fresh hosts,
# timed from process start to exit: median, min and max, the ratio of the
# medians, the load average, time per stage and SSH sessions per host.
# Also the example stack's deploy, and `cluster check` at 5 and 30 nodes
# (SHOAL_CHECK_SIZES, SHOAL_CHECK_RUNS).
BENCH_SIZES ?= 3,10,30
BENCH_RUNS ?= 5
bench: build lab-image lab-archive
	SHOAL_BENCH=1 SHOAL_BENCH_SIZES=$(BENCH_SIZES) SHOAL_BENCH_RUNS=$(BENCH_RUNS) SHOAL_BIN_DIR=$(CURDIR)/bin $(GO) test $(TAGFLAG) -run '^$$' -bench 'ClusterUp|StackDeploy|ClusterCheck' -benchtime 1x -timeout 180m -v ./test/e2e/

# A benchmark, not a test: cluster up in process against N simulated hosts
# (test/simhost: in-process SSH servers answering as Debian hosts with
# Docker, an in-memory swarm), a first run and a no-op at each size, with
# shoal's wall time, CPU, peak memory, SSH sessions and bytes per host,
# goroutines and open files (test/scale). SCALE_FLAGS=-cpuprofile=FILE
# profiles the runs at the largest size.
SCALE_SIZES ?= 100,300,1000
SCALE_FLAGS ?=
bench-scale:
	$(GO) build -o bin/scale ./test/scale
	./bin/scale -sizes $(SCALE_SIZES) $(SCALE_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(TAGFLAG) ./...

clean:
	rm -rf bin dist
