#!/usr/bin/env bash
# Builds the robot_stack image from docker/Dockerfile (`make image`, `make image TORCH=cuda`):
#   1. wheelhouse/ (tools/wheelhouse.sh): the build installs Python packages from it only;
#   2. engine: podman or docker (tools/container_env.sh);
#   3. base image debian:bookworm-slim: present, else pulled, else (no registry reachable) made
#      here with debootstrap from this machine's Debian mirror and imported as
#      localhost/robot_stack-base:bookworm;
#   4. the build, tagged $IMAGE:latest (TORCH=cpu) or $IMAGE:cuda; prints its time and size.
# Environment: TORCH (cpu | cuda), IMAGE (default robot_stack), CONTAINER_ENGINE, DEBIAN_MIRROR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TORCH="${TORCH:-cpu}"
IMAGE="${IMAGE:-robot_stack}"
case "$TORCH" in cpu) TAG=latest;; cuda) TAG=cuda;; *) echo "image: TORCH must be cpu or cuda" >&2; exit 1;; esac
say() { echo "image: $*"; }

bash tools/wheelhouse.sh "$TORCH"
# shellcheck disable=SC1091
source tools/container_env.sh

# --- base image ----------------------------------------------------------------------------
BASE="docker.io/library/debian:bookworm-slim"
LOCAL_BASE="localhost/robot_stack-base:bookworm"

debian_mirror() {
  # The first Debian mirror (http) this machine's apt uses for bookworm, else deb.debian.org.
  local url
  url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'http://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ')
  echo "${DEBIAN_MIRROR:-${url:-http://deb.debian.org/debian}}"
}

make_local_base() {
  # A minimal bookworm root file system with the apt sources and dpkg/apt settings of the
  # official slim image (no docs, man pages or locales; apt caches cleaned).
  local mirror rootfs sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap (apt)"
    $sudo apt-get install -y -qq debootstrap >/dev/null
  fi
  mirror=$(debian_mirror)
  rootfs="$ROOT/build/debootstrap-rootfs"
  $sudo rm -rf "$rootfs"
  say "no $BASE here and no registry answers: debootstrap bookworm from $mirror (about 30 s)"
  $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$ROOT/build/debootstrap.log" 2>&1 \
    || { tail -n 20 "$ROOT/build/debootstrap.log" >&2; exit 1; }
  $sudo rm -f "$rootfs/etc/apt/sources.list"
  $sudo tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $sudo tee "$rootfs/etc/dpkg/dpkg.cfg.d/excludes" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  $sudo find "$rootfs/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
  $sudo rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  $sudo tar -C "$rootfs" -c . | $ENGINE import --change 'CMD ["bash"]' \
    --change "LABEL robot_stack.base=\"debootstrap bookworm minbase from $mirror\"" - "$LOCAL_BASE" >/dev/null
  $sudo rm -rf "$rootfs"
}

if $ENGINE image inspect "$BASE" >/dev/null 2>&1; then
  base="$BASE"
elif $ENGINE image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
  base="$LOCAL_BASE"
elif $ENGINE pull -q "$BASE" >/dev/null 2>&1; then
  base="$BASE"
else
  make_local_base
  base="$LOCAL_BASE"
fi

# --- build ---------------------------------------------------------------------------------
say "building $IMAGE:$TAG with $ENGINE on $base (torch $TORCH)"
start=$(date +%s)
# Host network in the build: apt needs no bridge set up (dockerd may run without one). Docker:
# BuildKit sends only the files the Dockerfile copies (not wheelhouse/torch-cuda for a CPU build).
[ "$ENGINE" = podman ] || export DOCKER_BUILDKIT=1
$ENGINE build --network=host -f docker/Dockerfile -t "$IMAGE:$TAG" --build-arg BASE_IMAGE="$base" --build-arg TORCH="$TORCH" .
size=$($ENGINE image inspect -f '{{.Size}}' "$IMAGE:$TAG")
say "built $IMAGE:$TAG in $(( $(date +%s) - start )) s; size $(( size / 1000000 )) MB"
