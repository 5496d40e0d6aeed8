# syntax=docker/dockerfile:1
# Multi-stage image: the Go builder runs the same Make target as CI
# (`make build`), the runtime holds OVS userspace tools, iproute2 and our
# binaries. Built with: docker build --build-arg VERSION=$(git describe) .
FROM golang:1.26-bookworm AS builder
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
RUN make build VERSION=${VERSION} COMMIT=${COMMIT}

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends openvswitch-switch iproute2 iputils-ping \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /src/bin/ /usr/local/bin/
COPY build/start-ovs.sh /usr/local/bin/start-ovs.sh
ENTRYPOINT ["/usr/local/bin/noderoute-agent"]
