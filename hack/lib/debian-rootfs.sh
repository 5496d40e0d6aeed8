# shellcheck shell=bash
# Copyright The noderoute Authors.
#
# Debian root file systems for the images built here without a registry
# (hack/build-base-images.sh, hack/build-kind-node-image.sh). Sourced, not run.
#
# debian_rootfs_tar prints the path of a `debootstrap --variant=minbase`
# rootfs of DEBIAN_SUITE as a tar file under _output/images/, making it the
# first time (about two minutes) and reusing it after. Its apt sources are
# the mirror this machine's apt uses, so images made from it install
# packages the way the host does (plain HTTP; no registry).
#
# Needs REPO_ROOT, log and die.

DEBIAN_SUITE=bookworm
IMAGES_DIR="${REPO_ROOT}/_output/images"
# Bump when the rootfs recipe changes, to make the cached tar again.
DEBIAN_ROOTFS_RECIPE=1

# The first Debian archive URI of the host's apt sources (deb822 or one-line
# format), deb.debian.org when there is none.
debian_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')"
  if [[ -z "${uri}" ]]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  log "installing debootstrap" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; } >/dev/null 2>&1 ||
    die "apt-get install debootstrap failed"
}

debian_rootfs_tar() {
  local mirror tar stamp want
  mirror="$(debian_mirror)"
  tar="${IMAGES_DIR}/${DEBIAN_SUITE}-minbase.tar"
  stamp="${tar}.stamp"
  want="suite=${DEBIAN_SUITE} mirror=${mirror} recipe=${DEBIAN_ROOTFS_RECIPE}"
  if [[ -f "${tar}" && "$(cat "${stamp}" 2>/dev/null)" == "${want}" ]]; then
    echo "${tar}"
    return 0
  fi
  ensure_debootstrap
  mkdir -p "${IMAGES_DIR}"
  local dir="${IMAGES_DIR}/.rootfs.$$" start=${SECONDS}
  rm -rf "${dir}"
  log "debootstrap --variant=minbase ${DEBIAN_SUITE} from ${mirror} (about two minutes)" >&2
  if ! debootstrap --variant=minbase "${DEBIAN_SUITE}" "${dir}" "${mirror}" >"${IMAGES_DIR}/debootstrap.log" 2>&1; then
    rm -rf "${dir}"
    tail -n 20 "${IMAGES_DIR}/debootstrap.log" >&2
    die "debootstrap failed (log: ${IMAGES_DIR}/debootstrap.log)"
  fi
  local security="${mirror%/debian}/debian-security"
  [[ "${mirror}" == */debian ]] || security="http://deb.debian.org/debian-security"
  cat >"${dir}/etc/apt/sources.list" <<EOF
deb ${mirror} ${DEBIAN_SUITE} main
deb ${mirror} ${DEBIAN_SUITE}-updates main
deb ${security} ${DEBIAN_SUITE}-security main
EOF
  # What debootstrap leaves that no image wants.
  rm -rf "${dir}"/var/cache/apt/archives/*.deb "${dir}"/var/lib/apt/lists/* "${dir}"/var/log/*.log
  tar -C "${dir}" --numeric-owner -cf "${tar}.tmp" . && mv -f "${tar}.tmp" "${tar}"
  rm -rf "${dir}"
  echo "${want}" >"${stamp}"
  log "rootfs ${tar#"${REPO_ROOT}/"} made in $((SECONDS - start)) s" >&2
  echo "${tar}"
}
