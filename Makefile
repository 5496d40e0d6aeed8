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
BINARIES      := noderoute-agent
# Integration tests share the machine's OVS binaries and namespaces: keep
# packages sequential so their OVS instances do not starve each other.
TEST_FLAGS    ?= -count=1 -p 1

.PHONY: all build test test-unit test-integration check-fmt vet clean k8s-binaries help

all: build

help:
	@echo "make build             build $(BINARIES) into $(BIN_DIR)/"
	@echo "make test              vet, gofmt check, unit and integration tests (integration needs root)"
	@echo "make test-unit         unit tests only (no root needed)"
	@echo "make test-integration  integration tests only (root, OVS installed)"
	@echo "make k8s-binaries      build kube-apiserver, etcd, kubectl into _output/bin (once)"

build: $(addprefix $(BIN_DIR)/,$(BINARIES))

$(BIN_DIR)/%: FORCE
	$(GO_BUILD) -o $@ ./cmd/$*

FORCE:

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: check-fmt vet build
	$(GO) test $(TEST_FLAGS) ./...

test-unit:
	$(GO) test $(TEST_FLAGS) -short ./...

test-integration:
	NODEROUTE_REQUIRE_INTEGRATION=1 $(GO) test $(TEST_FLAGS) ./pkg/ovs/... ./pkg/route/... ./test/integration/...

k8s-binaries:
	hack/build-k8s-binaries.sh

clean:
	rm -rf $(BIN_DIR)
