# syntax=docker/dockerfile:1
# noderoute image: noderoute-agent, agentctl, Open vSwitch and
# build/start-ovs.sh. The DaemonSet in deploy/ runs it twice: as the `ovs`
# container (start-ovs.sh) and as the `agent` container (noderoute-agent).
#
#   docker build -t noderoute/noderoute:v0.3.0 \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse --short HEAD)" .
#
# VERSION and COMMIT are what `noderoute-agent --version` and
# `agentctl version` print (and the noderoute_build_info metric). With the
# same arguments and base images the binaries are the same: -trimpath, no
# VCS stamping (.git is not in the build context, see .dockerignore), and the
# Go toolchain pinned to go.mod's version.
#
# The base images are build arguments: the defaults are the public ones;
# `make image` (hack/build-image.sh) passes stand-ins built locally where no
# registry is reachable. GO_IMAGE's Go must be go.mod's.
ARG GO_IMAGE=golang:1.26.8
ARG BASE_IMAGE=debian:bookworm-slim

# Builder: the same Make target as CI (`make build`).
FROM ${GO_IMAGE} AS builder
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
RUN make build VERSION="${VERSION}" COMMIT="${COMMIT}" \
 && ./bin/noderoute-agent --version && ./bin/agentctl --help >/dev/null

# Runtime: Debian 12 (as the CI machines) with Open vSwitch
# (openvswitch-switch: ovsdb-server, ovs-vswitchd; it pulls in
# openvswitch-common: ovs-vsctl, ovs-ofctl, ovs-appctl, which agentctl and the
# probes use), iproute2 (`ip` for troubleshooting) and iputils-ping.
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openvswitch-switch iproute2 iputils-ping \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /src/bin/noderoute-agent /src/bin/agentctl /usr/local/bin/
COPY build/start-ovs.sh /usr/local/bin/start-ovs.sh
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="noderoute" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/noderoute/noderoute"
# Not root by default: `docker run <image> --version` and the like need no
# privilege. The DaemonSet runs both containers as UID 0 with all
# capabilities dropped but NET_ADMIN (deploy/base/noderoute-agent.yaml says
# why), because Kubernetes grants added capabilities to root only.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/noderoute-agent"]
