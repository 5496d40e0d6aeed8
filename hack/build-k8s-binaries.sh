#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# Builds the upstream control-plane binaries the integration tests need
# (test/framework/localapi): kube-apiserver, kubectl and etcd, from source,
# fetched through the Go module proxy only (no prebuilt binary downloads).
# With --kind, also what the kind node image (hack/build-kind-node-image.sh)
# and the kind cluster need: kubelet, kubeadm, kube-controller-manager,
# kube-scheduler (same module and flags as kube-apiserver), crictl
# (sigs.k8s.io/cri-tools) and the kind CLI (sigs.k8s.io/kind). No kube-proxy:
# the kind cluster runs with kubeProxyMode: none.
#
# The versions come from hack/versions.env. Each binary is built into
# _output/bin/ and recorded in _output/bin/.versions; a binary that exists and
# whose recorded version matches is not rebuilt. --force rebuilds everything.
#
# The builds happen in throwaway Go modules generated under _output/k8s-build/
# so that noderoute's own go.mod never depends on k8s.io/kubernetes.
#
# Requirements: Go (the version k8s.io/kubernetes asks for, or a GOTOOLCHAIN
# setting that lets the go command fetch it) and access to the module proxy
# ($GOPROXY). Ambient GOFLAGS / GOPROXY / GOCACHE are honoured.
#
# Cold build on 2 cores: kube-apiserver is the long one (~10 minutes idle,
# 20 when the machine is busy); etcd and kubectl take 1-2 minutes each.
# The Kubernetes binaries that are wanted are built by one `go build`, so
# that they share the compilation of their common packages.

set -euo pipefail

# Bump when the way the binaries are built changes, to invalidate stamps.
RECIPE=1

usage() {
  cat <<EOF
Usage: $(basename "$0") [--force] [--kind] [BINARY...]

Builds kube-apiserver, kubectl and etcd into _output/bin/.
  --force     rebuild even if the binary exists with the recorded version
  --kind      also the kind set: ${KIND_SET[*]}
  BINARY...   only consider these binaries (default: the three above;
              any of: ${ALL_BINARIES[*]})
EOF
}

# What `make k8s-binaries` (CI, make test) builds.
DEFAULT_SET=(kube-apiserver kubectl etcd)
# What hack/build-kind-node-image.sh and `kind create cluster` need.
KIND_SET=(kubelet kubeadm kube-apiserver kube-controller-manager kube-scheduler kubectl etcd crictl kind)
# The Kubernetes commands, all built from the throwaway kube module.
KUBE_BINARIES=(kube-apiserver kubectl kubelet kubeadm kube-controller-manager kube-scheduler)
ALL_BINARIES=("${KUBE_BINARIES[@]}" etcd crictl kind)

FORCE=0
ONLY=()
for arg in "$@"; do
  case "${arg}" in
    --force) FORCE=1 ;;
    --kind) ONLY+=("${KIND_SET[@]}") ;;
    -h|--help) usage; exit 0 ;;
    *)
      if [[ " ${ALL_BINARIES[*]} " != *" ${arg} "* ]]; then
        echo "unknown argument: ${arg}" >&2; usage >&2; exit 2
      fi
      ONLY+=("${arg}") ;;
  esac
done
if [[ ${#ONLY[@]} -eq 0 ]]; then
  ONLY=("${DEFAULT_SET[@]}")
fi

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"

# shellcheck source-path=SCRIPTDIR source=versions.env
source "${SCRIPT_DIR}/versions.env"
: "${KUBE_VERSION:?KUBE_VERSION missing from hack/versions.env}"
: "${KUBE_STAGING_VERSION:?KUBE_STAGING_VERSION missing from hack/versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing from hack/versions.env}"
: "${KIND_VERSION:?KIND_VERSION missing from hack/versions.env}"
: "${CRICTL_VERSION:?CRICTL_VERSION missing from hack/versions.env}"

OUT_DIR="${REPO_ROOT}/_output"
BIN_DIR="${OUT_DIR}/bin"
WORK_DIR="${OUT_DIR}/k8s-build"
STAMP_FILE="${BIN_DIR}/.versions"

# Never let a go.work (ours or a parent's) leak into the throwaway modules.
export GOWORK=off
export GO111MODULE=on
# Static binaries, as upstream builds them. Override with CGO_ENABLED=1.
export CGO_ENABLED="${CGO_ENABLED:-0}"

log() { printf '[build-k8s-binaries] %s\n' "$*"; }
die() { printf '[build-k8s-binaries] ERROR: %s\n' "$*" >&2; exit 1; }

fmt_duration() {
  local s=$1
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

command -v go >/dev/null 2>&1 || die "go not found in PATH; install Go first (https://go.dev/dl/)"

# ---------------------------------------------------------------------------
# Stamp file: one "<binary> <descriptor>" line per binary.

stamp_get() {
  [[ -f "${STAMP_FILE}" ]] || return 0
  awk -v b="$1" '$1 == b { $1 = ""; sub(/^ /, ""); print; exit }' "${STAMP_FILE}"
}

stamp_set() { # name descriptor (empty descriptor: remove)
  local tmp="${STAMP_FILE}.tmp.$$"
  mkdir -p "${BIN_DIR}"
  if [[ -f "${STAMP_FILE}" ]]; then
    awk -v b="$1" '$1 != b' "${STAMP_FILE}" > "${tmp}"
  else
    : > "${tmp}"
  fi
  if [[ -n "$2" ]]; then
    printf '%s %s\n' "$1" "$2" >> "${tmp}"
  fi
  mv -f "${tmp}" "${STAMP_FILE}"
}

KUBE_DESC="k8s.io/kubernetes@${KUBE_VERSION} staging@${KUBE_STAGING_VERSION} recipe=${RECIPE}"
ETCD_DESC="go.etcd.io/etcd/server/v3@${ETCD_VERSION} recipe=${RECIPE}"
CRICTL_DESC="sigs.k8s.io/cri-tools@${CRICTL_VERSION} recipe=${RECIPE}"
KIND_DESC="sigs.k8s.io/kind@${KIND_VERSION} recipe=${RECIPE}"

descriptor_for() {
  case "$1" in
    etcd) echo "${ETCD_DESC}" ;;
    crictl) echo "${CRICTL_DESC}" ;;
    kind) echo "${KIND_DESC}" ;;
    *) echo "${KUBE_DESC}" ;;
  esac
}

needs_build() {
  local name=$1 want have
  want="$(descriptor_for "${name}")"
  if [[ "${FORCE}" == 1 ]]; then
    log "${name}: --force given, rebuilding"
    return 0
  fi
  if [[ ! -x "${BIN_DIR}/${name}" ]]; then
    log "${name}: not built yet"
    return 0
  fi
  have="$(stamp_get "${name}")"
  if [[ "${have}" != "${want}" ]]; then
    log "${name}: recorded '${have:-<none>}', want '${want}': rebuilding"
    return 0
  fi
  log "${name}: up to date (${want}), skipping"
  return 1
}

# ---------------------------------------------------------------------------
# Throwaway modules.

# write_module DIR: reads the wanted go.mod on stdin; (re)writes DIR/go.mod
# and runs `go mod tidy` only when that input changed since the last run.
write_module() {
  local dir=$1 input
  input="$(cat)"
  mkdir -p "${dir}"
  if [[ -f "${dir}/go.mod.in" && -f "${dir}/go.mod" && -f "${dir}/go.sum" ]] &&
     [[ "$(cat "${dir}/go.mod.in")" == "${input}" ]]; then
    log "module ${dir#"${REPO_ROOT}/"} unchanged, not re-resolving"
    return 0
  fi
  rm -f "${dir}/go.mod.in" "${dir}/go.sum"
  printf '%s\n' "${input}" > "${dir}/go.mod"
  local start=${SECONDS}
  log "resolving dependencies in ${dir#"${REPO_ROOT}/"} (go mod tidy)"
  (cd "${dir}" && go mod tidy) || die "go mod tidy failed in ${dir}"
  printf '%s\n' "${input}" > "${dir}/go.mod.in"
  log "resolved in $(fmt_duration $((SECONDS - start)))"
}

# Prints "<path of cached .mod file> <commit time>" for module@version.
# Runs in an empty module of its own so that the state of noderoute's
# go.mod (the enclosing module) cannot interfere.
module_info() {
  local meta="${WORK_DIR}/meta"
  mkdir -p "${meta}"
  [[ -f "${meta}/go.mod" ]] || printf 'module noderoute.invalid/k8s-build/meta\n' > "${meta}/go.mod"
  (cd "${meta}" && go list -m \
    -f '{{.GoMod}} {{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$1") ||
    die "cannot fetch $1 from the module proxy (GOPROXY=$(go env GOPROXY))"
}

KUBE_MOD_DIR="${WORK_DIR}/kube"
KUBE_BUILD_DATE=""
prepare_kube_module() {
  mkdir -p "${WORK_DIR}"
  log "fetching k8s.io/kubernetes@${KUBE_VERSION} metadata"
  local info gomod
  info="$(module_info "k8s.io/kubernetes@${KUBE_VERSION}")"
  gomod="${info%% *}"
  KUBE_BUILD_DATE="${info#* }"
  [[ -f "${gomod}" ]] || die "no go.mod for k8s.io/kubernetes@${KUBE_VERSION} at ${gomod}"

  local goversion godebug replaces
  goversion="$(awk '$1 == "go" { print $2; exit }' "${gomod}")"
  godebug="$(grep -E '^godebug ' "${gomod}" || true)"
  # Every staging module that kubernetes replaces with ./staging/src/k8s.io/X
  # is published on its own as k8s.io/X@KUBE_STAGING_VERSION.
  replaces="$(awk -v v="${KUBE_STAGING_VERSION}" '
    $2 == "=>" && $3 ~ /^\.\/staging\/src\// { printf "\t%s => %s %s\n", $1, $1, v }
  ' "${gomod}")"
  [[ -n "${replaces}" ]] || die "found no staging replace directives in ${gomod}"

  write_module "${KUBE_MOD_DIR}" <<EOF
// Generated by hack/build-k8s-binaries.sh. Do not edit, do not commit.
// Throwaway module used only to build the Kubernetes commands below.
module noderoute.invalid/k8s-build/kube

go ${goversion}

${godebug}

require k8s.io/kubernetes ${KUBE_VERSION}

replace (
${replaces}
)

tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kube-scheduler
	k8s.io/kubernetes/cmd/kubeadm
	k8s.io/kubernetes/cmd/kubectl
	k8s.io/kubernetes/cmd/kubelet
)
EOF
}

ETCD_MOD_DIR="${WORK_DIR}/etcd"
prepare_etcd_module() {
  mkdir -p "${WORK_DIR}"
  log "fetching go.etcd.io/etcd/server/v3@${ETCD_VERSION} metadata"
  local info gomod goversion
  info="$(module_info "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")"
  gomod="${info%% *}"
  [[ -f "${gomod}" ]] || die "no go.mod for go.etcd.io/etcd/server/v3@${ETCD_VERSION} at ${gomod}"
  goversion="$(awk '$1 == "go" { print $2; exit }' "${gomod}")"
  # etcd gets its own module so that its dependency versions are exactly
  # those etcd itself was released with (not raised by kubernetes').
  write_module "${ETCD_MOD_DIR}" <<EOF
// Generated by hack/build-k8s-binaries.sh. Do not edit, do not commit.
// Throwaway module used only to build etcd (go.etcd.io/etcd/server/v3 is
// etcd's own main package, a wrapper around etcdmain.Main).
module noderoute.invalid/k8s-build/etcd

go ${goversion}

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}

tool go.etcd.io/etcd/server/v3
EOF
}

# ---------------------------------------------------------------------------
# Building.

# build_binary NAME MODDIR PKG TAGS LDFLAGS
build_binary() {
  local name=$1 dir=$2 pkg=$3 tags=$4 ldflags=$5
  local out="${BIN_DIR}/${name}" tmp="${BIN_DIR}/.${name}.tmp.$$"
  local start=${SECONDS}
  mkdir -p "${BIN_DIR}"
  stamp_set "${name}" ""
  log "building ${name} from ${pkg} (started $(date +%H:%M:%S))"
  if ! (cd "${dir}" && go build -trimpath -tags "${tags}" -ldflags "${ldflags}" -o "${tmp}" "${pkg}"); then
    rm -f "${tmp}"
    die "building ${name} failed"
  fi
  mv -f "${tmp}" "${out}"
  stamp_set "${name}" "$(descriptor_for "${name}")"
  local elapsed=$((SECONDS - start)) size
  size="$(du -h "${out}" | cut -f1)"
  log "built ${name} in $(fmt_duration "${elapsed}") (${size}) -> ${out#"${REPO_ROOT}/"}"
  SUMMARY+=("${name}: built in $(fmt_duration "${elapsed}"), ${size}")
}

# build_kube_binaries NAME...: one `go build` for the Kubernetes commands
# NAME... (k8s.io/kubernetes/cmd/NAME), so that they share the compilation of
# their common packages; each lands in BIN_DIR with its stamp.
build_kube_binaries() {
  local tmpdir="${BIN_DIR}/.kube-build.$$" start=${SECONDS} name ldflags
  local -a pkgs=()
  for name in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/${name}"); done
  ldflags="$(kube_ldflags)"
  mkdir -p "${BIN_DIR}"
  rm -rf "${tmpdir}" && mkdir -p "${tmpdir}"
  for name in "$@"; do stamp_set "${name}" ""; done
  log "building $* from k8s.io/kubernetes@${KUBE_VERSION} in one go build (started $(date +%H:%M:%S))"
  if ! (cd "${KUBE_MOD_DIR}" && go build -trimpath -tags "${KUBE_TAGS}" -ldflags "${ldflags}" -o "${tmpdir}/" "${pkgs[@]}"); then
    rm -rf "${tmpdir}"
    die "building $* failed"
  fi
  local elapsed=$((SECONDS - start)) size
  for name in "$@"; do
    [[ -x "${tmpdir}/${name}" ]] || { rm -rf "${tmpdir}"; die "go build made no ${name}"; }
    mv -f "${tmpdir}/${name}" "${BIN_DIR}/${name}"
    stamp_set "${name}" "$(descriptor_for "${name}")"
    size="$(du -h "${BIN_DIR}/${name}" | cut -f1)"
    SUMMARY+=("${name}: ${size}")
  done
  rm -rf "${tmpdir}"
  log "built $* in $(fmt_duration "${elapsed}") -> ${BIN_DIR#"${REPO_ROOT}/"}"
  SUMMARY+=("($*: one go build, $(fmt_duration "${elapsed}"))")
}

# install_tool NAME PKG@VERSION LDFLAGS: `go install` of a module's command
# at an exact version (its own go.mod, as upstream resolves it), into BIN_DIR.
install_tool() {
  local name=$1 pkg=$2 ldflags=$3 gobin="${BIN_DIR}/.gobin.$$" start=${SECONDS}
  mkdir -p "${BIN_DIR}"
  rm -rf "${gobin}"
  stamp_set "${name}" ""
  log "building ${name} from ${pkg} (started $(date +%H:%M:%S))"
  if ! GOBIN="${gobin}" go install -trimpath -ldflags "${ldflags}" "${pkg}"; then
    rm -rf "${gobin}"
    die "building ${name} (go install ${pkg}) failed"
  fi
  mv -f "${gobin}/${name}" "${BIN_DIR}/${name}"
  rm -rf "${gobin}"
  stamp_set "${name}" "$(descriptor_for "${name}")"
  local elapsed=$((SECONDS - start)) size
  size="$(du -h "${BIN_DIR}/${name}" | cut -f1)"
  log "built ${name} in $(fmt_duration "${elapsed}") (${size}) -> ${BIN_DIR#"${REPO_ROOT}/"}/${name}"
  SUMMARY+=("${name}: built in $(fmt_duration "${elapsed}"), ${size}")
}

kube_ldflags() {
  local ver=${KUBE_VERSION#v} major minor
  major="${ver%%.*}"
  minor="${ver#*.}"; minor="${minor%%.*}"
  local -a f=()
  local pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    f+=("-X '${pkg}.gitVersion=${KUBE_VERSION}'"
        "-X '${pkg}.gitMajor=${major}'"
        "-X '${pkg}.gitMinor=${minor}'")
    if [[ -n "${KUBE_BUILD_DATE}" ]]; then
      f+=("-X '${pkg}.buildDate=${KUBE_BUILD_DATE}'")
    fi
  done
  echo "-s -w ${f[*]}"
}

# Same tags as kubernetes' hack/lib/golang.sh for non-debug builds.
KUBE_TAGS="selinux,notest,grpcnotrace"

main() {
  SUMMARY=()
  local TOTAL_START=${SECONDS} want line name
  local build_etcd=0 build_crictl=0 build_kind=0
  local -a kube=()
  log "$(go version); GOPROXY=$(go env GOPROXY) GOFLAGS=$(go env GOFLAGS) CGO_ENABLED=${CGO_ENABLED}"
  log "versions: kubernetes ${KUBE_VERSION} (staging ${KUBE_STAGING_VERSION}), etcd ${ETCD_VERSION}, crictl ${CRICTL_VERSION}, kind ${KIND_VERSION}"

  want=" ${ONLY[*]} "
  for name in "${KUBE_BINARIES[@]}"; do
    if [[ "${want}" == *" ${name} "* ]] && needs_build "${name}"; then kube+=("${name}"); fi
  done
  if [[ "${want}" == *" etcd "* ]] && needs_build etcd; then build_etcd=1; fi
  if [[ "${want}" == *" crictl "* ]] && needs_build crictl; then build_crictl=1; fi
  if [[ "${want}" == *" kind "* ]] && needs_build kind; then build_kind=1; fi

  if [[ ${build_etcd} == 1 ]]; then
    prepare_etcd_module
    build_binary etcd "${ETCD_MOD_DIR}" go.etcd.io/etcd/server/v3 "" "-s -w"
  fi
  if [[ ${build_crictl} == 1 ]]; then
    install_tool crictl "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}" \
      "-s -w -X 'sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION#v}'"
  fi
  if [[ ${build_kind} == 1 ]]; then
    install_tool kind "sigs.k8s.io/kind@${KIND_VERSION}" "-s -w"
  fi

  if [[ ${#kube[@]} -gt 0 ]]; then
    prepare_kube_module
    if [[ ${#kube[@]} -eq 1 ]]; then
      build_binary "${kube[0]}" "${KUBE_MOD_DIR}" "k8s.io/kubernetes/cmd/${kube[0]}" "${KUBE_TAGS}" "$(kube_ldflags)"
    else
      build_kube_binaries "${kube[@]}"
    fi
  fi

  if [[ ${#SUMMARY[@]} -eq 0 ]]; then
    log "nothing to do; binaries in ${BIN_DIR#"${REPO_ROOT}/"} are up to date (use --force to rebuild)"
  else
    log "summary (total $(fmt_duration $((SECONDS - TOTAL_START)))):"
    for line in "${SUMMARY[@]}"; do log "  ${line}"; done
  fi
}

# Everything runs from main, so that bash has parsed the whole file before
# doing anything, and exits on the same line: bash reads a script as it runs
# it, so after main returns it would otherwise read on at the old offset of a
# file edited meanwhile (editing the script during a long build is then
# harmless).
main; exit $?
