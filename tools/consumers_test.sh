#!/usr/bin/env bash
# Uses segwal from other projects, the three ways README.md ("Using segwal from
# your project") describes, and checks each program runs:
#   - cmake sources:  CMakeLists.txt builds exactly the files of Bazel's //wal:wal
#                     (tools/check_cmake_sources.sh);
#   - bazel consumer: examples/bazel_consumer, its own workspace with @segwal;
#   - cmake install:  CMakeLists.txt built and installed into a temporary prefix;
#   - cmake consumer: examples/cmake_consumer against that prefix, linked with
#                     libsegwal.so, then with libsegwal.a;
#   - pkg-config:     examples/cmake_consumer/app.cc built with one g++ line.
# Each example opens a WAL, appends, syncs, replays and exits non-zero on a mismatch.
# Ends with "tests: N passed, M failed" (each item above is one test) and exits 1
# if any failed.
#
# The examples' Bazel workspace has its own output base (it compiles segwal's
# libraries once, in fastbuild mode); a Bazel server this script starts for it
# exits after 5 idle minutes.
# The CMake build directory is kept in SEGWAL_CONSUMERS_CACHE (default
# ~/.cache/segwal-consumers/<checkout>), so later runs rebuild only what changed;
# the install prefix and the consumers' builds are temporary.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/segwal-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT
cache_root=${SEGWAL_CONSUMERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segwal-consumers}
cmake_build="$cache_root/$(printf '%s' "$root" | md5sum | cut -c1-16)/build"
prefix="$work/prefix"
generator="Unix Makefiles"
if command -v ninja >/dev/null; then generator=Ninja; fi
jobs=$(nproc 2>/dev/null || echo 2)

passed=0
failed=0
# run NAME COMMAND...: one test; its output is shown only when it fails.
run() {
  local name=$1
  shift
  local log="$work/$(printf '%s' "$name" | tr ' ' '_').log"
  local t0
  t0=$(date +%s)
  if "$@" >"$log" 2>&1; then
    echo "consumers: $name passed ($(( $(date +%s) - t0 )) s): $(tail -n 1 "$log")"
    passed=$((passed + 1))
  else
    echo "consumers: $name FAILED ($(( $(date +%s) - t0 )) s); its output:"
    sed 's/^/  /' "$log" | tail -n 60
    failed=$((failed + 1))
  fi
}

bazel_consumer() {
  cd "$root/examples/bazel_consumer" &&
    bazel --max_idle_secs=300 build //:app &&
    "$(bazel --max_idle_secs=300 info bazel-bin 2>/dev/null)/app"
}

cmake_install() {
  # A build directory made by another checkout or generator is started afresh.
  if [ -f "$cmake_build/CMakeCache.txt" ] &&
     ! { grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$cmake_build/CMakeCache.txt" &&
         grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$cmake_build/CMakeCache.txt"; }; then
    rm -rf "$cmake_build"
  fi
  cmake -S "$root" -B "$cmake_build" -G "$generator" -DCMAKE_INSTALL_PREFIX="$prefix" &&
    cmake --build "$cmake_build" -j "$jobs" &&
    cmake --install "$cmake_build" &&
    echo "installed into $prefix: $(cd "$prefix" && find . -type f | wc -l) files"
}

# cmake_consumer BUILD_DIR [CMAKE ARGS...]
cmake_consumer() {
  local build="$work/$1"
  shift
  cmake -S "$root/examples/cmake_consumer" -B "$build" -G "$generator" \
    -DCMAKE_PREFIX_PATH="$prefix" "$@" &&
    cmake --build "$build" &&
    "$build/app"
}

pkg_config_consumer() {
  local cflags_libs
  cflags_libs=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs segwal) &&
    echo "g++ -std=c++20 app.cc $cflags_libs" &&
    # shellcheck disable=SC2086  # the flags are words
    g++ -std=c++20 "$root/examples/cmake_consumer/app.cc" $cflags_libs \
      -Wl,-rpath,"$prefix/lib" -o "$work/pkg_config_app" &&
    "$work/pkg_config_app"
}

run "cmake sources" ./tools/check_cmake_sources.sh
run "bazel consumer" bazel_consumer
run "cmake install" cmake_install
if [ -f "$prefix/lib/cmake/segwal/segwalConfig.cmake" ]; then
  run "cmake consumer (shared)" cmake_consumer cmake_shared
  run "cmake consumer (static)" cmake_consumer cmake_static -DSEGWAL_USE_STATIC_LIBS=ON
  run "pkg-config consumer" pkg_config_consumer
else
  echo "consumers: cmake consumer, pkg-config consumer not run (nothing installed)"
  failed=$((failed + 3))
fi
echo "tests: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
