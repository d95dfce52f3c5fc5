#!/usr/bin/env bash
# Installs the Debian packages segwal builds with, and nothing else. Idempotent:
# a package already installed is skipped, and when nothing is missing apt is not run.
#   tools/install_deps.sh           what the build and the tests need (make test)
#   tools/install_deps.sh --bench   that, and what only `make bench` runs
set -euo pipefail

PACKAGES=(
  g++ make cmake pkg-config
  bazel-bootstrap bazel-rules-java bazel-platforms
  libabsl-dev android-libboringssl-dev libsnappy-dev libgflags-dev
  libgtest-dev libgmock-dev libbenchmark-dev libisal-dev liburing-dev
  clang libclang-rt-14-dev
  # segkv_server's event loop; redis-cli/redis-benchmark for its end-to-end
  # test; redis-server (AOF, appendfsync always) as make bench's baseline.
  libuv1-dev redis-tools redis-server
  # libraft (canonical raft 0.15): raft/, segwal as its log store.
  libraft-dev
)

# Only the benchmark suite uses these: rocksdb-tools is RocksDB's db_bench
# (7.8.3 on Debian bookworm), run beside db_bench_wal (README.md, "RocksDB
# beside segwal"). Without it the suite still runs and its RocksDB rows say so.
BENCH_PACKAGES=(
  rocksdb-tools
)

case "${1:-}" in
  "") ;;
  --bench) PACKAGES+=("${BENCH_PACKAGES[@]}") ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

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
