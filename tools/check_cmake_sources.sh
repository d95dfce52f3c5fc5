#!/usr/bin/env bash
# Keeps the CMake build (CMakeLists.txt) from drifting from the Bazel one: the
# sources and headers CMake compiles and installs must be exactly the srcs and hdrs
# of the Bazel targets //wal:wal depends on (segwal's own packages only; external
# repositories are system libraries). Prints the difference and exits 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."

# The files listed in `set(<var> ...)` in CMakeLists.txt, one per line, sorted.
cmake_list() {
  awk -v var="$1" '
    $0 ~ "^set\\(" var "$" { inside = 1; next }
    inside && /^\)/ { inside = 0 }
    inside { for (i = 1; i <= NF; i++) print $i }
  ' CMakeLists.txt | sort
}

query_err=$(mktemp)
trap 'rm -f "$query_err"' EXIT
# The files a query expression names in segwal's own packages, as paths, sorted.
bazel_files() {
  bazel query --noimplicit_deps "$1" 2>"$query_err" |
    sed -n 's#^//\([^:]*\):\(.*\)$#\1/\2#p' | sed 's#^/##' | sort
}

deps='deps(//wal:wal)'
status=0
check() {
  local what=$1 cmake_var=$2 query=$3
  local diff_out
  if ! bazel_list=$(bazel_files "$query") || [ -z "$bazel_list" ]; then
    echo "check_cmake_sources: bazel query failed: $query" >&2
    grep -v '^Loading' "$query_err" >&2
    status=1
    return
  fi
  if ! diff_out=$(diff <(echo "$bazel_list") <(cmake_list "$cmake_var")); then
    echo "check_cmake_sources: $what differ ('<' only in Bazel's $query, '>' only in CMakeLists.txt's $cmake_var):" >&2
    echo "$diff_out" | grep '^[<>]' >&2
    status=1
  fi
}
check sources SEGWAL_SOURCES "labels(srcs, $deps)"
check headers SEGWAL_HEADERS "labels(hdrs, $deps) + labels(textual_hdrs, $deps)"
if [ "$status" -eq 0 ]; then
  echo "check_cmake_sources: CMakeLists.txt compiles the srcs and installs the hdrs of deps(//wal:wal)"
fi
exit "$status"
