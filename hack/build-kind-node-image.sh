#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# Builds the kind node image noderoute/kind-node:<KUBE_VERSION> on this
# machine, offline: no registry, only Debian's apt mirror (plain HTTP) and the
# Go module proxy (for the binaries, hack/build-k8s-binaries.sh --kind).
#
#   hack/build-kind-node-image.sh [--force]
#
# What `kind build node-image` would make from kind's base image, made from
# parts built here instead:
#   - rootfs: hack/lib/debian-rootfs.sh's bookworm minbase + the node's Debian
#     packages (Debian's containerd 1.6 and runc 1.1, where kind's base image
#     has trixie + containerd 2.x built by kind), cached under _output/kind/;
#   - kind's node conventions (entrypoint, systemd units and drop-ins,
#     containerd config, crictl.yaml, sysctl, /kind/bin) taken at build time
#     from the kind module at KIND_VERSION (images/base/files), adapted where
#     noted below; our own files are in build/kind-node/;
#   - kubelet, kubeadm, kubectl, crictl in the node; kube-apiserver,
#     kube-controller-manager, kube-scheduler, etcd and pause
#     (hack/tools/pause) as images with the tags kubeadm asks for, each a
#     `docker import` of a tiny rootfs holding the static binary, preloaded
#     into the node's containerd. No kube-proxy (kubeProxyMode: none), no
#     coredns image (its pods stay Pending until nodes are Ready), no kindnetd
#     (the cluster config must say disableDefaultCNI: true), no
#     local-path-provisioner (the default StorageClass is host-path).
#
# Adapted from kind's files, and why:
#   - containerd.service: ExecStart is /usr/bin/containerd (Debian's path).
#   - containerd config.toml (already version 2, which containerd 1.6 reads
#     natively): the fuse-overlayfs proxy plugin is dropped (containerd-
#     fuse-overlayfs is not shipped, so rootless/fuse nodes are unsupported),
#     sandbox_image is the pause tag kubeadm lists, and
#     tolerate_missing_hugepages_controller is spelled as 1.6 reads it
#     (tolerate_missing_hugetlb_controller; 1.6 ignores the other name). The
#     result is checked with `containerd config dump` of the node's containerd.
#   - containerd-fuse-overlayfs.service is not installed (no binary).
#   - CNI plugins: Debian's containernetworking-plugins, copying kind's set
#     (host-local, loopback, ptp, portmap) to /opt/cni/bin; containerd 1.6
#     needs loopback for every non-hostNetwork pod.
#   - ENTRYPOINT is build/kind-node/entrypoint, which sets containerd's
#     restrict_oom_score_adj = true only when the node's bounding set lacks
#     CAP_SYS_RESOURCE, then execs kind's entrypoint unchanged.
#
# The image carries a content key (label noderoute.kind-node.key, also in
# _output/kind/node-image.key): a hash of hack/versions.env, the recipe files
# and the kind version. When an image with that key exists the build is
# skipped. Intermediate files live under _output/kind/ (the package rootfs
# tar is cached there); temporary containers, mounts and tags are removed on
# exit, whatever happens. Needs root, a Docker engine (hack/docker.sh up) and
# Go.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"

# shellcheck source-path=SCRIPTDIR source=versions.env
source "${SCRIPT_DIR}/versions.env"
: "${KUBE_VERSION:?KUBE_VERSION missing from hack/versions.env}"
: "${KIND_VERSION:?KIND_VERSION missing from hack/versions.env}"

IMAGE="noderoute/kind-node:${KUBE_VERSION}"
KEY_LABEL="noderoute.kind-node.key"
OUT="${REPO_ROOT}/_output/kind"
BIN_DIR="${REPO_ROOT}/_output/bin"
OWN_FILES="${REPO_ROOT}/build/kind-node"
# Bump when the package set or the way the package rootfs is made changes.
PACKAGES_RECIPE=1
NODE_PACKAGES=(
  systemd systemd-sysv dbus containerd runc
  iptables nftables conntrack socat ethtool ebtables kmod iproute2
  mount util-linux ca-certificates libseccomp2 procps bash pigz rsync jq
  iputils-ping arping containernetworking-plugins
)
# kind's CNI plugin set (images/base/Dockerfile), from Debian's package.
CNI_PLUGINS=(host-local loopback ptp portmap)
NODE_BINARIES=(kubelet kubeadm kubectl)
IMAGE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd)

FORCE=0
for arg in "$@"; do
  case "${arg}" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: ${arg} (usage: $(basename "$0") [--force])" >&2; exit 2 ;;
  esac
done

log() { printf '[kind-node-image] %s\n' "$*"; }
die() { printf '[kind-node-image] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Cleanup: everything temporary is registered here and undone on exit.

MOUNTS=()      # mount points, unmounted in reverse order
TMP_DIRS=()    # removed once nothing is mounted below them
TMP_TAGS=()    # docker tags removed
PRELOAD_PID="" # the preload containerd
CURRENT_STEP=""

unmount_all() {
  local i m
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    m="${MOUNTS[i]}"
    if mountpoint -q "${m}"; then
      umount "${m}" 2>/dev/null || umount -l "${m}" || log "WARNING: could not unmount ${m}"
    fi
  done
  MOUNTS=()
}

# Nothing may be mounted under a directory that is about to be removed
# (an rm -rf through a bind mount of /dev would empty the host's /dev).
mounted_below() {
  awk -v d="$1/" '{ m = $5; gsub(/\\040/, " ", m); if (index(m "/", d) == 1) { found = 1 } } END { exit !found }' /proc/self/mountinfo
}

remove_dir() {
  local d=$1
  [[ -e "${d}" ]] || return 0
  if mounted_below "${d}"; then
    log "WARNING: something is still mounted under ${d}: not removing it"
    return 1
  fi
  rm -rf "${d}"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "${PRELOAD_PID}" ]] && kill -0 "${PRELOAD_PID}" 2>/dev/null; then
    kill -TERM "${PRELOAD_PID}" 2>/dev/null || true
    wait "${PRELOAD_PID}" 2>/dev/null || true
  fi
  unmount_all
  local d t
  for d in "${TMP_DIRS[@]}"; do remove_dir "${d}" || true; done
  rm -f "${PKG_TAR}.tmp" "${IMAGES_TAR}.tmp" "${IMAGES_TAR}"
  for t in "${TMP_TAGS[@]}"; do docker rmi "${t}" >/dev/null 2>&1 || true; done
  if [[ ${rc} -ne 0 ]]; then
    printf '[kind-node-image] ERROR: %s failed (exit %d); nothing of it is left (logs: %s)\n' \
      "${CURRENT_STEP:-the build}" "${rc}" "${OUT#"${REPO_ROOT}/"}/logs/" >&2
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME FUNCTION [ARGS...]: runs one step, one line with its time.
step() {
  local name=$1 start=${SECONDS}
  shift
  CURRENT_STEP="step '${name}'"
  "$@"
  log "${name}: $((SECONDS - start)) s${STEP_NOTE:+ (${STEP_NOTE})}"
  STEP_NOTE=""
  CURRENT_STEP=""
}
STEP_NOTE=""

# run LOGNAME CMD...: output to _output/kind/logs/LOGNAME.log; its tail on failure.
run() {
  local logf="${OUT}/logs/$1.log"
  shift
  if ! "$@" >"${logf}" 2>&1; then
    tail -n 25 "${logf}" >&2
    return 1
  fi
}

chroot_mounts() { # ROOT: /proc, /sys, /dev for tools run in the chroot
  local r=$1
  mount -t proc proc "${r}/proc" && MOUNTS+=("${r}/proc")
  mount --bind /sys "${r}/sys" && MOUNTS+=("${r}/sys")
  mount --bind /dev "${r}/dev" && MOUNTS+=("${r}/dev")
  mount --bind /dev/pts "${r}/dev/pts" && MOUNTS+=("${r}/dev/pts")
}

# ---------------------------------------------------------------------------
# Content key.

KIND_MOD_DIR=""
kind_module_dir() {
  [[ -n "${KIND_MOD_DIR}" ]] && return 0
  local meta="${OUT}/meta"
  mkdir -p "${meta}"
  [[ -f "${meta}/go.mod" ]] || printf 'module noderoute.invalid/kind-node/meta\n' >"${meta}/go.mod"
  KIND_MOD_DIR="$(cd "${meta}" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" |
    awk -F'"' '$2 == "Dir" { print $4 }')" || true
  [[ -d "${KIND_MOD_DIR}/images/base/files" ]] ||
    die "cannot fetch sigs.k8s.io/kind@${KIND_VERSION} from the module proxy (GOPROXY=$(go env GOPROXY))"
}

content_key() {
  {
    echo "kind=${KIND_VERSION} packages-recipe=${PACKAGES_RECIPE}"
    (cd "${REPO_ROOT}" && sha256sum hack/versions.env hack/build-kind-node-image.sh \
      hack/build-k8s-binaries.sh hack/lib/debian-rootfs.sh \
      build/kind-node/* hack/tools/pause/*.go)
  } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------------------
# Steps.

step_binaries() {
  log "binaries: hack/build-k8s-binaries.sh --kind (a cold build takes 20-30 minutes; log: ${OUT#"${REPO_ROOT}/"}/logs/binaries.log)"
  run binaries "${SCRIPT_DIR}/build-k8s-binaries.sh" --kind
  local b
  for b in "${NODE_BINARIES[@]}" "${IMAGE_BINARIES[@]}" crictl; do
    [[ -x "${BIN_DIR}/${b}" ]] || die "${BIN_DIR}/${b} missing after hack/build-k8s-binaries.sh --kind"
  done
  mkdir -p "${OUT}/bin"
  (cd "${REPO_ROOT}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${OUT}/bin/pause" ./hack/tools/pause)
  STEP_NOTE="hack/build-k8s-binaries.sh --kind, hack/tools/pause"
}

BASE_TAR=""
step_debian_rootfs() {
  # shellcheck source-path=SCRIPTDIR source=lib/debian-rootfs.sh
  source "${SCRIPT_DIR}/lib/debian-rootfs.sh"
  BASE_TAR="$(debian_rootfs_tar)"
  STEP_NOTE="${BASE_TAR#"${REPO_ROOT}/"}"
}

PKG_TAR="${OUT}/node-packages.tar"
step_packages() {
  local want
  want="base=$(cat "${BASE_TAR}.stamp") recipe=${PACKAGES_RECIPE} packages=${NODE_PACKAGES[*]}"
  if [[ -f "${PKG_TAR}" && "$(cat "${PKG_TAR}.stamp" 2>/dev/null)" == "${want}" ]]; then
    STEP_NOTE="cached ${PKG_TAR#"${REPO_ROOT}/"}"
    return 0
  fi
  local r="${OUT}/packages.work"
  remove_dir "${r}" || die "cannot clean ${r}"
  TMP_DIRS+=("${r}")
  mkdir -p "${r}"
  tar -C "${r}" --numeric-owner -xf "${BASE_TAR}"
  cp -L /etc/resolv.conf "${r}/etc/resolv.conf"
  # No service starts from a package's maintainer scripts in the chroot.
  printf '#!/bin/sh\nexit 101\n' >"${r}/usr/sbin/policy-rc.d"
  chmod 755 "${r}/usr/sbin/policy-rc.d"
  chroot_mounts "${r}"
  run apt-update chroot "${r}" apt-get update
  run apt-install chroot "${r}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${NODE_PACKAGES[@]}"
  chroot "${r}" apt-get clean
  unmount_all
  rm -f "${r}/usr/sbin/policy-rc.d"
  rm -rf "${r}"/var/lib/apt/lists/* "${r}"/var/cache/apt/*.bin "${r}"/var/log/apt/* "${r}"/var/log/*.log \
    "${r}"/usr/share/doc/* "${r}"/usr/share/man/* "${r}"/usr/share/info/*
  : >"${r}/etc/resolv.conf"
  tar -C "${r}" --numeric-owner -cf "${PKG_TAR}.tmp" . && mv -f "${PKG_TAR}.tmp" "${PKG_TAR}"
  echo "${want}" >"${PKG_TAR}.stamp"
  remove_dir "${r}"
  STEP_NOTE="$(chroot_versions) -> ${PKG_TAR#"${REPO_ROOT}/"}"
}
chroot_versions() { awk '/^Unpacking (containerd|runc|systemd) /{ print $2, $3 }' "${OUT}/logs/apt-install.log" | tr -d '()' | paste -sd, -; }

IMAGES_TAR="${OUT}/component-images.tar"
PAUSE_IMAGE=""
COMPONENT_TAGS=()
step_component_images() {
  local list
  list="$("${BIN_DIR}/kubeadm" config images list --kubernetes-version "${KUBE_VERSION}" 2>"${OUT}/logs/kubeadm-images.log")" ||
    { cat "${OUT}/logs/kubeadm-images.log" >&2; die "kubeadm config images list failed"; }
  local tag name bin
  COMPONENT_TAGS=()
  for tag in ${list}; do
    name="${tag##*/}"
    name="${name%%:*}"
    case "${name}" in
      kube-proxy | coredns) continue ;; # kubeProxyMode: none; coredns not needed
      pause) PAUSE_IMAGE="${tag}"; bin="${OUT}/bin/pause" ;;
      etcd)
        bin="${BIN_DIR}/etcd"
        [[ "${tag##*:}" == "${ETCD_VERSION#v}"* ]] ||
          log "WARNING: kubeadm wants ${tag}, the etcd built is ${ETCD_VERSION} (tagged as kubeadm wants)"
        ;;
      *) bin="${BIN_DIR}/${name}" ;;
    esac
    [[ -x "${bin}" ]] || die "no binary for image ${tag} (${bin})"
    component_image "${tag}" "${bin}"
    COMPONENT_TAGS+=("${tag}")
  done
  [[ -n "${PAUSE_IMAGE}" ]] || die "kubeadm lists no pause image"
  docker save -o "${IMAGES_TAR}.tmp" "${COMPONENT_TAGS[@]}" && mv -f "${IMAGES_TAR}.tmp" "${IMAGES_TAR}"
  STEP_NOTE="${COMPONENT_TAGS[*]}"
}

# component_image TAG BINARY: a rootfs with BINARY in /usr/local/bin (pause:
# /pause, as upstream), passwd/group, /tmp; tagged TAG in the host's docker
# until the images are saved (the tags are removed on exit).
component_image() {
  local tag=$1 bin=$2 d="${OUT}/image.work" name
  name="$(basename "${bin}")"
  remove_dir "${d}" || die "cannot clean ${d}"
  TMP_DIRS+=("${d}")
  mkdir -p "${d}/usr/local/bin" "${d}/etc" "${d}/tmp" "${d}/var/run"
  chmod 1777 "${d}/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"${d}/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"${d}/etc/group"
  printf 'hosts: files dns\n' >"${d}/etc/nsswitch.conf"
  local entry="/usr/local/bin/${name}"
  if [[ "${name}" == pause ]]; then entry="/pause"; fi
  cp "${bin}" "${d}${entry}"
  chmod 755 "${d}${entry}"
  TMP_TAGS+=("${tag}")
  tar -C "${d}" --numeric-owner --owner=0 --group=0 -c . |
    docker import --change "ENTRYPOINT [\"${entry}\"]" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL ${KEY_LABEL}.component=${name}" - "${tag}" >/dev/null
  remove_dir "${d}"
}

ROOT="${OUT}/node.work"
step_assemble() {
  kind_module_dir
  local k="${KIND_MOD_DIR}/images/base/files" r="${ROOT}"
  remove_dir "${r}" || die "cannot clean ${r}"
  TMP_DIRS+=("${r}")
  mkdir -p "${r}"
  tar -C "${r}" --numeric-owner -xf "${PKG_TAR}"

  # kind's files, with the modes kind's Dockerfile gives them.
  install -d -m 0755 "${r}/kind" "${r}/kind/bin" "${r}/kind/manifests" "${r}/LICENSES" \
    "${r}/etc/containerd" "${r}/etc/default" "${r}/etc/sysctl.d" \
    "${r}/etc/systemd/system/kubelet.service.d" "${r}/etc/kubernetes/manifests" "${r}/opt/cni/bin"
  install -m 0755 "${k}"/usr/local/bin/* "${r}/usr/local/bin/"
  install -m 0644 "${k}/kind/README.txt" "${r}/kind/"
  install -m 0755 "${k}"/kind/bin/* "${r}/kind/bin/"
  install -m 0644 "${k}"/LICENSES/* "${r}/LICENSES/"
  install -m 0644 "${k}/etc/crictl.yaml" "${r}/etc/"
  install -m 0644 "${k}"/etc/default/* "${r}/etc/default/"
  install -m 0644 "${k}"/etc/sysctl.d/* "${r}/etc/sysctl.d/"
  install -m 0644 "${k}"/etc/systemd/system/kubelet.service.d/* "${r}/etc/systemd/system/kubelet.service.d/"
  local unit
  for unit in "${k}"/etc/systemd/system/*; do
    [[ -f "${unit}" ]] || continue
    case "$(basename "${unit}")" in
      containerd-fuse-overlayfs.service) continue ;; # not shipped
    esac
    install -m 0644 "${unit}" "${r}/etc/systemd/system/"
  done
  sed -i 's#^ExecStart=/usr/local/bin/containerd$#ExecStart=/usr/bin/containerd#' "${r}/etc/systemd/system/containerd.service"
  grep -qx 'ExecStart=/usr/bin/containerd' "${r}/etc/systemd/system/containerd.service" ||
    die "kind's containerd.service has no 'ExecStart=/usr/local/bin/containerd' to adapt"
  [[ -x "${r}/usr/bin/containerd" && -x "${r}/usr/sbin/runc" ]] || die "Debian's containerd/runc missing from the rootfs"

  # containerd config: kind's, for containerd 1.6 (see the header).
  {
    echo "# kind ${KIND_VERSION} images/base/files/etc/containerd/config.toml, adapted by"
    echo "# hack/build-kind-node-image.sh for Debian's containerd 1.6: no fuse-overlayfs"
    echo "# proxy plugin, sandbox_image = kubeadm's pause image, 1.6's name for"
    echo "# tolerate_missing_hugepages_controller (tolerate_missing_hugetlb_controller)."
    awk '/^\[/ { skip = ($0 ~ /^\[proxy_plugins/) } !skip' "${k}/etc/containerd/config.toml" |
      sed -e "s#^\([[:space:]]*sandbox_image = \).*#\1\"${PAUSE_IMAGE}\"#" \
        -e 's#tolerate_missing_hugepages_controller#tolerate_missing_hugetlb_controller#'
  } >"${r}/etc/containerd/config.toml"
  grep -q "sandbox_image = \"${PAUSE_IMAGE}\"" "${r}/etc/containerd/config.toml" || die "could not set sandbox_image in containerd's config"
  grep -q '^[[:space:]]*restrict_oom_score_adj = false' "${r}/etc/containerd/config.toml" ||
    die "kind's containerd config has no 'restrict_oom_score_adj = false' (build/kind-node/entrypoint edits it)"
  # kind: `ctr oci spec` + the product-files hook, without rlimits.
  chroot "${r}" ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"${r}/etc/containerd/cri-base.json"
  run containerd-config chroot "${r}" containerd --config /etc/containerd/config.toml config dump ||
    die "containerd 1.6 rejects the adapted config"

  # Our first-stage entrypoint, our storage manifest.
  install -m 0755 "${OWN_FILES}/entrypoint" "${r}/usr/local/bin/noderoute-entrypoint"
  install -m 0644 "${OWN_FILES}/default-storage.yaml" "${r}/kind/manifests/default-storage.yaml"

  # Binaries: kind's node-image build puts them in /usr/bin.
  local b
  for b in "${NODE_BINARIES[@]}"; do install -m 0755 "${BIN_DIR}/${b}" "${r}/usr/bin/${b}"; done
  install -m 0755 "${BIN_DIR}/crictl" "${r}/usr/local/bin/crictl"
  for b in "${CNI_PLUGINS[@]}"; do
    install -m 0755 "${r}/usr/lib/cni/${b}" "${r}/opt/cni/bin/${b}" || die "CNI plugin ${b} missing from containernetworking-plugins"
  done
  printf '%s' "${KUBE_VERSION}" >"${r}/kind/version"

  # systemd as kind's Dockerfile sets it up.
  find "${r}/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "${r}"/lib/systemd/system/multi-user.target.wants/* "${r}"/etc/systemd/system/*.wants/* \
    "${r}"/lib/systemd/system/local-fs.target.wants/* "${r}"/lib/systemd/system/sockets.target.wants/*udev* \
    "${r}"/lib/systemd/system/sockets.target.wants/*initctl* "${r}"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"${r}/etc/systemd/journald.conf"
  [[ -e "${r}/sbin/init" ]] || ln -s /usr/lib/systemd/systemd "${r}/sbin/init"
  run systemctl chroot "${r}" sh -c 'systemctl enable kubelet.service containerd.service undo-mount-hacks.service && systemctl mask systemd-binfmt.service'
  # Regenerated by kind's entrypoint on every node.
  : >"${r}/etc/machine-id"
  rm -f "${r}/var/lib/dbus/machine-id"
  STEP_NOTE="kind files from ${KIND_MOD_DIR}"
}

step_preload() {
  local r="${ROOT}" sock=/run/nrt-preload/containerd.sock
  mkdir -p "${r}/run/nrt-preload"
  cat >"${r}/run/nrt-preload/config.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/nrt-preload/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
EOF
  chroot_mounts "${r}"
  chroot "${r}" containerd --config /run/nrt-preload/config.toml >"${OUT}/logs/preload-containerd.log" 2>&1 &
  PRELOAD_PID=$!
  local i
  for i in $(seq 1 60); do
    [[ -S "${r}${sock}" ]] && chroot "${r}" ctr --address "${sock}" version >/dev/null 2>&1 && break
    kill -0 "${PRELOAD_PID}" 2>/dev/null || { tail -n 20 "${OUT}/logs/preload-containerd.log" >&2; die "the node's containerd exited"; }
    sleep 0.5
  done
  run preload-import chroot "${r}" ctr --address "${sock}" -n k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - <"${IMAGES_TAR}"
  local have tag
  have="$(chroot "${r}" ctr --address "${sock}" -n k8s.io images ls -q)"
  for tag in "${COMPONENT_TAGS[@]}"; do
    grep -qxF "${tag}" <<<"${have}" || die "${tag} is not in the node's containerd after the import"
  done
  kill -TERM "${PRELOAD_PID}"
  wait "${PRELOAD_PID}" || true
  PRELOAD_PID=""
  unmount_all
  rm -rf "${r}/run/nrt-preload"
  rm -f "${IMAGES_TAR}"
  STEP_NOTE="${#COMPONENT_TAGS[@]} images into /var/lib/containerd, $(du -sh "${r}/var/lib/containerd" | cut -f1)"
}

step_image() {
  local key=$1
  local base="noderoute/kind-node-rootfs:${KUBE_VERSION}-${key}" ctx="${OUT}/docker-context"
  TMP_TAGS+=("${base}")
  TMP_DIRS+=("${ctx}")
  tar -C "${ROOT}" --numeric-owner -c . | docker import - "${base}" >/dev/null
  remove_dir "${ROOT}"
  # docker import cannot set STOPSIGNAL: one config-only build on top.
  mkdir -p "${ctx}"
  cat >"${ctx}/Dockerfile" <<EOF
FROM ${base}
# systemd: https://systemd.io/CONTAINER_INTERFACE/; it exits on SIGRTMIN+3.
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/noderoute-entrypoint", "/sbin/init"]
LABEL ${KEY_LABEL}="${key}" noderoute.kind-node.kubernetes="${KUBE_VERSION}" noderoute.kind-node.kind="${KIND_VERSION}"
EOF
  run docker-build docker build -t "${IMAGE}" "${ctx}"
  remove_dir "${ctx}"
  echo "${key}" >"${OUT}/node-image.key"
  STEP_NOTE="$(docker image inspect -f '{{.Size}}' "${IMAGE}" | awk '{ printf "%d MB", $1 / 1e6 }')"
}

# ---------------------------------------------------------------------------

main() {
  [[ "$(id -u)" == 0 ]] || die "needs root (chroot, mounts)"
  if ! { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }; then
    die "no Docker engine answers (hack/docker.sh up)"
  fi
  command -v go >/dev/null 2>&1 || die "go not found in PATH"
  mkdir -p "${OUT}/logs"
  exec 9>"${OUT}/.lock"
  flock -n 9 || die "another hack/build-kind-node-image.sh is running (${OUT}/.lock)"

  local start=${SECONDS} key have old_id
  key="$(content_key)"
  have="$(docker image inspect -f "{{index .Config.Labels \"${KEY_LABEL}\"}}" "${IMAGE}" 2>/dev/null || true)"
  old_id="$(docker image inspect -f '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"
  if [[ "${FORCE}" == 0 && "${have}" == "${key}" ]]; then
    echo "${key}" >"${OUT}/node-image.key"
    log "${IMAGE} is up to date (key ${key}): nothing to do ($((SECONDS - start)) s)"
    echo "${IMAGE}"
    return 0
  fi
  log "building ${IMAGE} (key ${key}${have:+, the existing image has ${have}}); logs in ${OUT#"${REPO_ROOT}/"}/logs/"
  step binaries step_binaries
  step "debian rootfs" step_debian_rootfs
  step "node packages" step_packages
  step "component images" step_component_images
  step "assemble rootfs" step_assemble
  step "preload images" step_preload
  step "docker image" step_image "${key}"
  # The image this one replaces, unless a container (an old cluster) uses it.
  if [[ -n "${old_id}" && "${old_id}" != "$(docker image inspect -f '{{.Id}}' "${IMAGE}")" ]]; then
    docker rmi "${old_id}" >/dev/null 2>&1 || log "the previous ${IMAGE} (${old_id:7:12}) is still in use: left"
  fi
  log "built ${IMAGE} in $((SECONDS - start)) s"
  echo "${IMAGE}"
}

main; exit $?
