# Seshat's build, test and run targets. `make test` is what CI runs.
GO      ?= go
SEEDS   ?= 10000
NODES   ?= 3
STEPS   ?= 3000
BENCHTIME ?= 2s

.PHONY: build run test test-unit test-race test-sim test-plant test-pebble sim bench bench-go bench-cluster lint fuzz compat

build:
	CGO_ENABLED=0 $(GO) build -o bin/seshatd ./cmd/seshatd

# The container image: a static seshatd on the host, FROM scratch around
# it (no registry needed). Then: docker-compose -f cmd/seshatd/docker-compose.yml up
IMAGE   ?= seshat:latest
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
.PHONY: image
image:
	GO=$(GO) ./cmd/seshatd/image.sh $(IMAGE) $(VERSION)

# A local 3-node cluster in the foreground: client ports 7379-7381, peer
# ports 7479-7481, data in ./data/N (kept between runs). Ctrl-C stops it.
run: build
	./cmd/seshatd/run-local.sh bin/seshatd

# Everything a change must pass: vet, the dependency rule, unit and contract
# tests, the in-process cluster tests, the simulator on a few hundred seeds
# and the planted-bug test.
test: lint test-unit test-race test-sim test-plant test-pebble

test-unit:
	$(GO) test -count=1 -timeout 10m ./...

# The race detector over the packages that run goroutines.
test-race:
	$(GO) test -count=1 -race -timeout 10m ./consensus/... ./adapters/memory/... ./adapters/tcp/... ./app/... ./adapters/resp/...

test-sim:
	$(GO) run ./test/sim -seeds 300 -nodes 3
	$(GO) run ./test/sim -seeds 100 -nodes 5

# The cluster tests and the simulator again, on Pebble storage (a crashable
# in-memory filesystem, so a crash keeps only what was synced).
test-pebble:
	SESHAT_TEST_STORAGE=pebble $(GO) test -count=1 -timeout 10m ./test/cluster
	$(GO) run ./test/sim -seeds 40 -nodes 3 -storage pebble

test-plant:
	$(GO) test -count=1 -tags seshatplant -run TestPlantedBugsFound -timeout 10m ./test/sim

# The differential test against a real redis-server (Debian's
# redis-server package), longer than the one `make test` runs:
# make compat COMPAT_OPS=100000, SESHAT_COMPAT_SEED=n to replay a seed.
COMPAT_OPS ?= 30000
compat:
	SESHAT_COMPAT_OPS=$(COMPAT_OPS) $(GO) test -count=1 -timeout 30m -v -run 'TestCompat' ./test/compat

# A long search of the simulator: make sim SEEDS=10000 NODES=5
sim:
	$(GO) run ./test/sim -seeds $(SEEDS) -nodes $(NODES) -steps $(STEPS)

# The cluster against redis-server: the table, the CPU per request and the
# bulk load's rate per tenth (about 8 minutes on 2 cores). The Go
# benchmarks of the hot paths are `make bench-go`.
bench: bench-cluster

bench-go:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./consensus/... ./adapters/tcp/...
	$(GO) test -run '^$$' -bench 'Apply|Conn' -benchmem -benchtime $(BENCHTIME) ./adapters/pebble ./adapters/resp

# redis-benchmark against a 3-node cluster and a redis-server with
# appendfsync always, interleaved, medians of REPEATS runs (needs the
# Debian packages redis-server and redis-tools).
# LOAD_KEYS sizes the bulk load (LOAD_KEYS=100000 for a quick run).
REPEATS ?= 3
LOAD_KEYS ?= 1000000
bench-cluster:
	$(GO) run ./test/bench -repeats $(REPEATS) -load-keys $(LOAD_KEYS)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags seshatplant ./consensus/... ./test/sim/... ./cmd/seshatd/

# Short fuzzing runs of every fuzz target (FUZZTIME each).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The chaos test (test/chaos): real partitions, packet loss, kills,
# pauses, membership changes during those faults and a full disk against
# a 5-node and a 3-node cluster of the image seshat:chaos, every workload
# checked (about 7 minutes on 2 cores). Needs Docker and the host's
# iptables, tc (iproute2), nsenter (util-linux) and mount (each node's
# data dir is a host tmpfs); runs as root.
# make chaos SEED=n replays a schedule; make chaos DURATION=30m runs longer.
SEED     ?=
DURATION ?=
CHAOS_IMAGE ?= seshat:chaos
.PHONY: chaos chaos-image chaos-plant chaos-regress
chaos-image:
	GO=$(GO) ./cmd/seshatd/image.sh $(CHAOS_IMAGE) $(VERSION)

chaos: chaos-image
	SESHAT_CHAOS=1 SESHAT_CHAOS_IMAGE=$(CHAOS_IMAGE) SESHAT_CHAOS_SEED=$(SEED) SESHAT_CHAOS_DURATION=$(DURATION) \
	  $(GO) test -count=1 -v -timeout 90m -run 'TestChaos$$' ./test/chaos

# The named regression tests of the failure classes Jepsen found in
# RedisRaft (test/chaos/regression_test.go), membership changes during a
# partition included (about 8 minutes).
chaos-regress: chaos-image
	SESHAT_CHAOS=1 SESHAT_CHAOS_IMAGE=$(CHAOS_IMAGE) SESHAT_CHAOS_SEED=$(SEED) \
	  $(GO) test -count=1 -v -timeout 30m -run 'TestRegression' ./test/chaos

# The chaos test's checkers shown to catch a real bug: an image built with
# -tags seshatplant whose nodes apply (and acknowledge) entries before they
# commit (PLANT, a consensus.Plant name); passes only if a violation is found.
PLANT ?= apply-uncommitted
chaos-plant:
	GOFLAGS="$(GOFLAGS) -tags=seshatplant" GO=$(GO) ./cmd/seshatd/image.sh $(CHAOS_IMAGE)-plant $(VERSION)
	SESHAT_CHAOS=1 SESHAT_CHAOS_IMAGE=$(CHAOS_IMAGE)-plant SESHAT_CHAOS_PLANT=$(PLANT) SESHAT_CHAOS_SEED=$(SEED) \
	  $(GO) test -count=1 -v -timeout 20m -run 'TestChaosFindsPlantedBug$$' ./test/chaos
