# noderoute: build and test. `make test` runs every test this machine can
# run: unit tests always; integration tests (real OVS + netlink in throwaway
# network namespaces) when run as root, skipped with a message otherwise.

GO            ?= go
BIN_DIR       := bin
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT        ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS       := -X github.com/noderoute/noderoute/pkg/version.Version=$(VERSION) \
                 -X github.com/noderoute/noderoute/pkg/version.Commit=$(COMMIT)
GO_BUILD      := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
BINARIES      := noderoute-agent agentctl
# Integration tests share the machine's OVS binaries and namespaces: keep
# packages sequential so their OVS instances do not starve each other.
TEST_FLAGS    ?= -count=1 -p 1

.PHONY: test-fuzz all build test test-e2e test-unit test-integration check-fmt vet clean k8s-binaries help

all: build

help:
	@echo "make build             build $(BINARIES) into $(BIN_DIR)/"
	@echo "make test              vet, gofmt check, unit and integration tests, a short fuzz run, deploy and e2e tests (root for all but unit)"
	@echo "make test-unit         unit tests only (no root needed)"
	@echo "make test-integration  integration tests only (root, OVS installed)"
	@echo "make test-e2e          end-to-end tests on a local cluster of network namespaces (root)"
	@echo "make test-fuzz         fuzz the pod-CIDR parser for FUZZTIME (default 20000x: runs)"
	@echo "make bench             the scale benchmark (root; docs/performance.md)"
	@echo "make demo              bring up a 3-node local cluster and show worker1's table 20 and routes"
	@echo "make cluster-down      tear the demo cluster down"
	@echo "make k8s-binaries      build kube-apiserver, etcd, kubectl into _output/bin (once)"
	@echo "make image             build the image $(IMAGE) from the Dockerfile (Docker; base images built locally)"
	@echo "make kind-up           a kind cluster 'noderoute' (1 control plane, 2 workers) running the DaemonSet"
	@echo "make kind-down         delete that cluster"
	@echo "make test-kind         kind-up, the e2e suite on kind, kind-down (KEEP=1 keeps the cluster)"
	@echo "make docker-up         start a Docker engine if none answers; make docker-down stops it (only if started so)"

build: $(addprefix $(BIN_DIR)/,$(BINARIES))

$(BIN_DIR)/%: FORCE
	$(GO_BUILD) -o $@ ./cmd/$*

FORCE:

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# test/deploy runs once, verbosely, in test-deploy, so that the CI log shows
# the server-side dry runs.
test: check-fmt vet build
	$(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -v /test/deploy)
	$(MAKE) test-fuzz
	$(MAKE) test-deploy
	$(MAKE) test-e2e

# A short fuzz run of the Node -> desired state parser (the committed corpus
# in pkg/agent/noderoute/testdata/fuzz is replayed by every go test too).
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with "context deadline exceeded" at the deadline
# (golang/go#75804, fixed in Go 1.27); seen here. 20000 runs keep it a
# short smoke run.
FUZZTIME ?= 20000x
test-fuzz:
	$(GO) test -run '^$$' -fuzz=FuzzParsePodSubnets -fuzztime=$(FUZZTIME) ./pkg/agent/noderoute/

# End-to-end: a local cluster (hack/local-cluster.sh, cluster name nrt-e2e)
# of network namespaces with a real API server; needs root.
test-e2e: build
	@if [ "$$(id -u)" != 0 ]; then echo "test-e2e: skipped: needs root (network namespaces, OVS)"; exit 0; fi; \
	$(GO) test -count=1 -tags e2e -timeout 20m -v ./test/e2e/ -args -provider=local

test-unit:
	$(GO) test $(TEST_FLAGS) -short ./...

test-integration:
	NODEROUTE_REQUIRE_INTEGRATION=1 $(GO) test $(TEST_FLAGS) ./pkg/ovs/... ./pkg/route/... ./pkg/agentctl/... ./test/integration/...

k8s-binaries:
	hack/build-k8s-binaries.sh

clean:
	rm -rf $(BIN_DIR)

# Local cluster of network namespaces (hack/local-cluster.sh, as root): etcd,
# kube-apiserver and one OVS + noderoute-agent per node. See
# docs/local-cluster.md.
.PHONY: demo cluster-down

demo:
	hack/local-cluster.sh up
	@echo
	@echo "### worker1: hack/local-cluster.sh exec worker1 -- ovs-ofctl dump-flows br-int table=20 --no-stats"
	@hack/local-cluster.sh exec worker1 -- ovs-ofctl dump-flows br-int table=20 --no-stats
	@echo
	@echo "### worker1: hack/local-cluster.sh exec worker1 -- ip route"
	@hack/local-cluster.sh exec worker1 -- ip route
	@echo
	@echo "Look around:"
	@echo "  hack/local-cluster.sh status"
	@echo "  hack/local-cluster.sh kubectl get nodes -o wide"
	@echo "  hack/local-cluster.sh exec worker1 -- ovs-vsctl show"
	@echo "  hack/local-cluster.sh exec worker1 -- ping -c1 -W1 10.222.2.5; hack/local-cluster.sh exec worker1 -- ip neigh"
	@echo "  hack/local-cluster.sh kubectl delete node worker2    # flows and routes for it go away on the others"
	@echo "  hack/local-cluster.sh logs worker1 -f"
	@echo "Tear down: hack/local-cluster.sh down   (or: make cluster-down)"

cluster-down:
	hack/local-cluster.sh down

# Scale benchmark (root, real OVS and API server): cold start against the
# floor, status heartbeats, incremental latency at three paces, a burst of
# Creates, restart and memory, for N = 1000 and 5000 remote Nodes as
# kubelets write them. BENCH_N="1000 5000" and the other BENCH_* of
# hack/bench.sh override. See docs/performance.md.
.PHONY: bench

bench:
	hack/bench.sh

# Deployment (deploy/, build/start-ovs.sh, hack/kind-e2e.sh): shell syntax,
# then test/deploy verbosely, so that the log shows the server-side dry runs:
# manifests and kustomize renderings checked offline, `kubectl apply
# --dry-run=server` of every variant and the ServiceAccount's RBAC against a
# real kube-apiserver, and the DaemonSet's pod run without a container
# runtime (root and `make k8s-binaries`; skipped otherwise).
.PHONY: test-deploy

test-deploy:
	@for f in build/start-ovs.sh hack/kind-e2e.sh; do bash -n $$f || exit 1; done
	$(GO) test -count=1 -v ./test/deploy/

# Images and kind (hack/build-image.sh, hack/kind-e2e.sh, hack/docker.sh;
# docs/install.md). No registry is needed: the base images, the kind node
# image and every binary in them are built here.
IMAGE ?= noderoute/noderoute:$(VERSION)
.PHONY: image docker-up docker-down kind-up kind-down test-kind

image:
	IMAGE=$(IMAGE) VERSION=$(VERSION) COMMIT=$(COMMIT) hack/build-image.sh

docker-up:
	hack/docker.sh up

docker-down:
	hack/docker.sh down

kind-up:
	VERSION=$(VERSION) COMMIT=$(COMMIT) hack/kind-e2e.sh up

kind-down:
	hack/kind-e2e.sh down

test-kind:
	VERSION=$(VERSION) COMMIT=$(COMMIT) hack/kind-e2e.sh test
