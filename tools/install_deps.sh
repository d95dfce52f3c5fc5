#!/usr/bin/env bash
# Installs the Debian packages segwal builds with, and nothing else. Idempotent:
# a package already installed is skipped, and when nothing is missing apt is not run.
set -euo pipefail

PACKAGES=(
  g++ make
  bazel-bootstrap bazel-rules-java bazel-platforms
  libabsl-dev android-libboringssl-dev libsnappy-dev libgflags-dev
  libgtest-dev libgmock-dev libbenchmark-dev libisal-dev liburing-dev
  clang libclang-rt-14-dev
  libraft-dev libuv1-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
