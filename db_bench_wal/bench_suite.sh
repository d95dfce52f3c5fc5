#!/usr/bin/env bash
# segwal's default benchmark suite, run by `make bench`
# (`bazel run -c opt //db_bench_wal:bench_suite`).
#
# Runs each micro-benchmark binary briefly (their usual Google Benchmark output
# scrolls by), then prints ONE summary table whose ratios all come from this
# run, so they compare like with like on this machine.
#
# Extra arguments are passed to every benchmark binary, e.g.
#   bazel run -c opt //db_bench_wal:bench_suite -- --benchmark_filter=Crc32c
# Environment: SEGWAL_BENCH_MIN_TIME (seconds per benchmark, default 0.2),
# SEGWAL_BENCH_DIR (where the POSIX file benchmarks write, default $TMPDIR or /tmp).
#
# To add a benchmark: add the binary to `data` in db_bench_wal/BUILD.bazel and
# to BENCHMARKS below, and the rows you want summarised to SUMMARY.
set -euo pipefail

MIN_TIME="${SEGWAL_BENCH_MIN_TIME:-0.2}"

# Benchmark binaries, as paths inside the workspace (runfiles of :bench_suite).
BENCHMARKS=(
  crypto/crc32c_benchmark
  env/env_benchmark
)

# Summary rows: "label|numerator benchmark|denominator benchmark". The ratio is
# numerator bytes/s over denominator bytes/s. Leave the denominator empty for a
# row that only reports a throughput.
SUMMARY=(
  "CRC32C fast/portable, 64 B|BM_Crc32cFast/64|BM_Crc32cPortable/64"
  "CRC32C fast/portable, 4 KiB|BM_Crc32cFast/4096|BM_Crc32cPortable/4096"
  "CRC32C fast/portable, 1 MiB|BM_Crc32cFast/1048576|BM_Crc32cPortable/1048576"
  "Append POSIX/mem, 100 B, no sync|BM_PosixAppend/record_bytes:100/sync_every:0/real_time|BM_MemAppend/record_bytes:100/sync_every:0/real_time"
  "Append POSIX/mem, 100 B, sync/100|BM_PosixAppend/record_bytes:100/sync_every:100/real_time|BM_MemAppend/record_bytes:100/sync_every:100/real_time"
  "Append POSIX/mem, 4 KiB, no sync|BM_PosixAppend/record_bytes:4096/sync_every:0/real_time|BM_MemAppend/record_bytes:4096/sync_every:0/real_time"
  "Append POSIX/mem, 4 KiB, sync/100|BM_PosixAppend/record_bytes:4096/sync_every:100/real_time|BM_MemAppend/record_bytes:4096/sync_every:100/real_time"
)

# Finds a binary among this script's runfiles. `bazel run` starts us in
# <runfiles>/segwal; a direct bazel-bin/... invocation has <script>.runfiles.
runfile() {
  local rel="$1" root
  for root in "${RUNFILES_DIR:-}" "$0.runfiles"; do
    if [ -n "$root" ] && [ -x "$root/segwal/$rel" ]; then
      echo "$root/segwal/$rel"
      return 0
    fi
  done
  if [ -x "$rel" ]; then
    echo "$PWD/$rel"
    return 0
  fi
  echo "bench_suite: $rel not found in runfiles (is it in data?)" >&2
  return 1
}

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

start=$SECONDS
failed=()
for rel in "${BENCHMARKS[@]}"; do
  echo "=== $rel"
  if ! bin="$(runfile "$rel")"; then
    failed+=("$rel")
    continue
  fi
  if ! "$bin" --benchmark_min_time="$MIN_TIME" \
      --benchmark_out="$results/$(basename "$rel").csv" \
      --benchmark_out_format=csv "$@"; then
    failed+=("$rel")
  fi
  echo
done

# Every result row of the CSV files (they start with the quoted name) as
# "name<TAB>bytes_per_second"; errors and skipped benchmarks have no bytes.
cat "$results"/*.csv 2>/dev/null |
  awk -F, '/^"/ { gsub(/"/, "", $1); print $1 "\t" $6 }' >"$results/all.tsv"

printf '%s\n' "${SUMMARY[@]}" | awk -F'|' -v tsv="$results/all.tsv" '
  BEGIN {
    while ((getline line < tsv) > 0) {
      split(line, f, "\t")
      if (f[2] != "") bps[f[1]] = f[2] + 0
    }
  }
  function human(b) {
    if (b >= 2^30) return sprintf("%.2f GiB/s", b / 2^30)
    if (b >= 2^20) return sprintf("%.1f MiB/s", b / 2^20)
    return sprintf("%.1f KiB/s", b / 2^10)
  }
  function cell(name) { return (name in bps) ? human(bps[name]) : "n/a" }
  {
    rows[NR] = $0
  }
  END {
    fmt = "%-36s %14s %14s %9s\n"
    print "==================== segwal benchmark summary ===================="
    printf fmt, "measure", "numerator", "denominator", "ratio"
    for (i = 1; i <= NR; i++) {
      split(rows[i], r, "|")
      ratio = "n/a"
      if (r[3] == "") {
        ratio = ""
      } else if ((r[2] in bps) && (r[3] in bps) && bps[r[3]] > 0) {
        ratio = sprintf("%.2fx", bps[r[2]] / bps[r[3]])
      }
      printf fmt, r[1], cell(r[2]), (r[3] == "" ? "" : cell(r[3])), ratio
    }
    print "ratio = numerator / denominator throughput (bytes/s), same run."
  }'
echo "suite time: $((SECONDS - start)) s, min time per benchmark: ${MIN_TIME} s"

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench_suite: failed: ${failed[*]}" >&2
  exit 1
fi
