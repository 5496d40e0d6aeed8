#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# Builds the noderoute image from the Dockerfile (what `make image` runs):
#
#   IMAGE=noderoute/noderoute:v0.3.0 VERSION=v0.3.0 COMMIT=abc1234 hack/build-image.sh
#
# The Dockerfile takes its two base images as build arguments (GO_IMAGE,
# default golang:<go.mod's Go>, and BASE_IMAGE, default debian:bookworm-slim).
# With both set in the environment they are passed as they are (a host that
# reaches a registry). Otherwise local stand-ins are built first, without a
# registry, and passed instead:
#   noderoute-local/debian:bookworm-slim   a debootstrap minbase rootfs
#                                          (hack/lib/debian-rootfs.sh)
#   noderoute-local/golang:<go version>    that rootfs + make, git and
#                                          ca-certificates from Debian, the
#                                          Go toolchain from the module proxy
#                                          (golang.org/toolchain), and the CA
#                                          certificates this host trusts
#                                          locally (/usr/local/share/
#                                          ca-certificates), so that `go mod
#                                          download` in the build works where
#                                          HTTPS goes through such a CA.
# Each stand-in carries a label with the key it was built from and is
# rebuilt only when that key changes. The Docker engine comes from
# hack/docker.sh up.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/debian-rootfs.sh
source hack/lib/debian-rootfs.sh

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
IMAGE=${IMAGE:-noderoute/noderoute:${VERSION}}
GO_VERSION="$(awk '$1 == "go" { print $2; exit }' go.mod)"
KEY_LABEL=io.noderoute.build-key
# Bump when the stand-ins' recipe below changes.
RECIPE=2

image_key() { docker image inspect -f "{{index .Config.Labels \"${KEY_LABEL}\"}}" "$1" 2>/dev/null || true; }

local_debian() {
  local name="noderoute-local/debian:${DEBIAN_SUITE}-slim" tar key
  tar="$(debian_rootfs_tar)"
  key="$(cat "${tar}.stamp") image-recipe=${RECIPE}"
  if [[ "$(image_key "${name}")" == "${key}" ]]; then
    log "${name}: up to date"
  else
    log "${name}: docker import of ${tar#"${REPO_ROOT}/"}"
    docker import --change "LABEL ${KEY_LABEL}=\"${key}\"" --change 'CMD ["bash"]' "${tar}" "${name}" >/dev/null ||
      die "docker import of ${tar} failed"
  fi
  echo "${name}"
}

local_golang() { # BASE
  local base=$1 name="noderoute-local/golang:${GO_VERSION}" toolchain key cas=""
  toolchain="$(cd "${REPO_ROOT}" && GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-amd64" |
    sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')"
  [[ -d "${toolchain}/bin" ]] || die "Go ${GO_VERSION} toolchain not found through the module proxy (golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-amd64)"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cas="$(cat /usr/local/share/ca-certificates/*.crt | sha256sum | cut -c1-16)"
  fi
  key="go=${GO_VERSION} base=$(image_key "${base}") cas=${cas:-none} recipe=${RECIPE}"
  if [[ "$(image_key "${name}")" == "${key}" ]]; then
    log "${name}: up to date"
    echo "${name}"
    return 0
  fi
  local ctx="${IMAGES_DIR}/golang-context" start=${SECONDS}
  rm -rf "${ctx}"
  mkdir -p "${ctx}/ca"
  cp -a "${toolchain}/." "${ctx}/go/"
  # The module cache holds the toolchain's files read-only and without
  # execute bits (the go command adds them when it switches toolchains).
  chmod -R u+w "${ctx}/go"
  chmod a+x "${ctx}"/go/bin/* "${ctx}"/go/pkg/tool/*/*
  if [[ -n "${cas}" ]]; then cp /usr/local/share/ca-certificates/*.crt "${ctx}/ca/"; fi
  cat >"${ctx}/Dockerfile" <<EOF
FROM ${base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates make git \\
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY go/ /usr/local/go/
ENV GOLANG_VERSION=${GO_VERSION} GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
LABEL ${KEY_LABEL}="${key}"
EOF
  log "${name}: building (Go ${GO_VERSION} from the module proxy, ${cas:+local CA certificates, }Debian packages)"
  docker build -q -t "${name}" "${ctx}" >"${IMAGES_DIR}/golang-build.log" 2>&1 ||
    { tail -n 20 "${IMAGES_DIR}/golang-build.log" >&2; die "building ${name} failed (log: ${IMAGES_DIR}/golang-build.log)"; }
  rm -rf "${ctx}"
  log "${name}: built in $((SECONDS - start)) s"
  echo "${name}"
}

main() {
  hack/docker.sh up >&2
  local go_image=${GO_IMAGE:-} base_image=${BASE_IMAGE:-}
  if [[ -z "${go_image}" || -z "${base_image}" ]]; then
    local debian
    debian="$(local_debian)"
    base_image=${base_image:-${debian}}
    [[ -n "${go_image}" ]] || go_image="$(local_golang "${debian}")"
  fi
  local start=${SECONDS}
  log "docker build -t ${IMAGE} (GO_IMAGE=${go_image} BASE_IMAGE=${base_image} VERSION=${VERSION})"
  mkdir -p "${IMAGES_DIR}"
  docker build -t "${IMAGE}" --build-arg GO_IMAGE="${go_image}" --build-arg BASE_IMAGE="${base_image}" \
    --build-arg VERSION="${VERSION}" --build-arg COMMIT="${COMMIT}" . >"${IMAGES_DIR}/image-build.log" 2>&1 ||
    { tail -n 30 "${IMAGES_DIR}/image-build.log" >&2; die "docker build of ${IMAGE} failed (log: ${IMAGES_DIR}/image-build.log)"; }
  log "built ${IMAGE} in $((SECONDS - start)) s; docker run --rm ${IMAGE} --version:"
  docker run --rm "${IMAGE}" --version
}

main
