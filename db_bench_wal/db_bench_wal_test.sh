#!/usr/bin/env bash
# db_bench_wal end to end: every benchmark with a tiny --num prints a db_bench
# result line that parses, exits 0 and leaves no temporary directory behind;
# bad flags fail with exactly one line on stderr and a non-zero exit.
#
#   bazel test //db_bench_wal:db_bench_wal_test
#   db_bench_wal/db_bench_wal_test.sh path/to/db_bench_wal   # by hand
set -uo pipefail

BIN="${1:-}"
if [ -z "$BIN" ]; then
  for c in "${TEST_SRCDIR:-}/segwal/db_bench_wal/db_bench_wal" \
           "db_bench_wal/db_bench_wal"; do
    if [ -x "$c" ]; then BIN="$c"; break; fi
  done
fi
[ -x "$BIN" ] || { echo "db_bench_wal binary not found" >&2; exit 1; }

TMP="$(mktemp -d "${TEST_TMPDIR:-/tmp}/db_bench_wal_test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
export TMPDIR="$TMP"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# name : X micros/op Y ops/sec Z seconds N operations; M MB/s [extra]
RESULT_RE='^[a-z]+(\[[^] ]*\])?( \[MEDIAN [0-9]+ runs\])? +: +[0-9]+\.[0-9]{3} micros/op [0-9]+ ops/sec [0-9]+\.[0-9]{3} seconds [0-9]+ operations; +[0-9]+\.[0-9] MB/s'

# Runs the tool; stdout in $TMP/out, stderr in $TMP/err, exit code in $rc.
run() {
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

expect_result() {  # label [operations]
  local line
  line="$(grep -F -- "$1 " "$TMP/out" | grep -E "$RESULT_RE" | head -n1)"
  if [ -z "$line" ]; then
    fail "no parsable result line for '$1'"
    sed 's/^/  | /' "$TMP/out" "$TMP/err" >&2
    return
  fi
  if [ $# -ge 2 ]; then
    local ops
    ops="$(sed -E 's/.* ([0-9]+) operations;.*/\1/' <<<"$line")"
    [ "$ops" = "$2" ] || fail "'$1' ran $ops operations, expected $2: $line"
  fi
}

expect_one_line_error() {  # description, after run
  if [ "$rc" -eq 0 ]; then
    fail "$1: exit code 0, expected non-zero"
  fi
  local lines
  lines="$(wc -l <"$TMP/err")"
  [ "$lines" -eq 1 ] || fail "$1: $lines lines on stderr, expected 1: $(cat "$TMP/err")"
  [ -s "$TMP/out" ] && fail "$1: printed to stdout: $(head -n3 "$TMP/out")"
  return 0
}

# --- Every benchmark, default temporary directory, histogram and comparison.
ALL='rawwrite,fillseq,rawsync,rawsync[prealloc=none],rawsync[prealloc=fallocate],fillsync,fillsync[threads=4],fillbatch,firsttouch,replay,iterate,openrecover,rollover,truncate,fillseq[value_size=4096,num=50],firsttouch[value_size=4096,num=50]'
run --benchmarks="$ALL" --num=3000 --open_count=2 --histogram --compare \
    --stats_interval_seconds=0
[ "$rc" -eq 0 ] || fail "all benchmarks: exit $rc: $(cat "$TMP/err")"
expect_result rawwrite 3000
expect_result fillseq 3000
expect_result rawsync 3      # num/1000, as db_bench's fillsync
expect_result 'rawsync[prealloc=none]' 3
expect_result 'rawsync[prealloc=fallocate]' 3
expect_result fillsync 3
expect_result 'fillsync[threads=4]' 12
expect_result fillbatch 3000
expect_result replay
expect_result iterate
expect_result openrecover 2
expect_result rollover 3
expect_result truncate 3
expect_result 'fillseq[value_size=4096,num=50]' 50
expect_result firsttouch 3000
expect_result 'firsttouch[value_size=4096,num=50]' 50
grep -q '^Count: [0-9]* Average: [0-9.]*  StdDev: [0-9.]*$' "$TMP/out" || fail "no histogram Count line"
grep -q '^Min: [0-9]*  Median: [0-9.]*  Max: [0-9]*$' "$TMP/out" || fail "no histogram Min line"
grep -qE '^Percentiles: P50: [0-9.]+ P75: [0-9.]+ P99: [0-9.]+ P99\.9: [0-9.]+ P99\.99: [0-9.]+$' "$TMP/out" ||
  fail "no histogram Percentiles line"
grep -qE '^[[(] +[0-9]+, +[0-9]+ \] +[0-9]+ +[0-9.]+% +[0-9.]+% #*$' "$TMP/out" || fail "no histogram bucket bar"
grep -qE '^fillsync +rawsync +[0-9.]+x' "$TMP/out" || fail "no fillsync/rawsync comparison"
grep -qE '^fillseq +rawwrite +[0-9.]+x' "$TMP/out" || fail "no fillseq/rawwrite comparison"
grep -qE '^fillsync\[threads=4\] +fillsync +[0-9.]+x' "$TMP/out" || fail "no group-commit comparison"

grep -qE '^openrecover +replay +[0-9.]+x' "$TMP/out" || fail "no openrecover/replay comparison"
grep -qE '^replay +firsttouch +[0-9.]+x' "$TMP/out" || fail "no replay/firsttouch comparison"
# The read benchmarks found the log the fills left, so they did not fill it.
grep -q 'the log is empty' "$TMP/err" && fail "replay filled a log that was not empty"
waldir="$(sed -n 's/^WAL dir: *\([^ ]*\) (temporary.*/\1/p' "$TMP/out")"
[ -n "$waldir" ] || fail "header has no temporary WAL dir"
[ -n "$waldir" ] && [ -e "$(dirname "$waldir")" ] && fail "temporary dir $(dirname "$waldir") left behind"

# --- [X<n>] repeats a benchmark and adds a median line.
run --benchmarks='rawwrite[X2],fillseq[X3,num=100]' --num=1000 --stats_interval_seconds=0 --compare
[ "$rc" -eq 0 ] || fail "repeats: exit $rc: $(cat "$TMP/err")"
n="$(grep -cE "^fillseq\[X3,num=100\] +: .* 100 operations;" "$TMP/out")"
[ "$n" -eq 3 ] || fail "fillseq[X3,...] printed $n runs, expected 3"
expect_result 'fillseq[X3,num=100] [MEDIAN 3 runs]' 100
expect_result 'rawwrite[X2] [MEDIAN 2 runs]' 1000
grep -qE '^fillseq\[X3,num=100\] +rawwrite\[X2\] +[0-9.]+x' "$TMP/out" || fail "no comparison of the medians"

# --- Read benchmarks on an empty log fill it first; an explicit --wal_dir is kept.
run --benchmarks=replay --num=500 --wal_dir="$TMP/wal1" --stats_interval_seconds=0
[ "$rc" -eq 0 ] || fail "replay on empty log: exit $rc: $(cat "$TMP/err")"
expect_result replay 500
grep -q 'the log is empty; filling it' "$TMP/err" || fail "replay did not say it filled the log"
[ -d "$TMP/wal1" ] || fail "--wal_dir was removed"
[ -e "$TMP/wal1/db_bench_wal.scratch" ] && fail "scratch dir left in --wal_dir"
# A non-empty --wal_dir needs --use_existing_wal, which benchmarks that log.
run --benchmarks=replay --num=10 --wal_dir="$TMP/wal1"
expect_one_line_error "non-empty --wal_dir"
run --benchmarks=iterate,openrecover --num=10 --open_count=1 --wal_dir="$TMP/wal1" --use_existing_wal
[ "$rc" -eq 0 ] || fail "--use_existing_wal: exit $rc: $(cat "$TMP/err")"
expect_result iterate 500

# --- --replay_threads: a replay split across threads (20 MiB in 1 MiB
# segments: two threads of 8 MiB or more) still counts every record (the
# benchmark fails otherwise).
run --benchmarks=fillseq,replay --num=5000 --value_size=4096 \
    --segment_size=1048576 --replay_threads=4 --stats_interval_seconds=0
[ "$rc" -eq 0 ] || fail "--replay_threads=4: exit $rc: $(cat "$TMP/err")"
expect_result replay 5000
grep -q '^Replay: *up to 4 threads' "$TMP/out" || fail "header does not show --replay_threads"

# --- --duration, and the progress line on stderr.
run --benchmarks=fillseq --duration=0.4 --stats_interval_seconds=0.1 --num=0
[ "$rc" -eq 0 ] || fail "--duration: exit $rc: $(cat "$TMP/err")"
expect_result fillseq
grep -qE '^fillseq: [0-9]+ ops in [0-9.]+ s, [0-9]+ ops/sec' "$TMP/err" || fail "no progress line: $(cat "$TMP/err")"

# --- Compression and encryption: results, or (until Open supports them) a
# one-line error and a non-zero exit. Never a crash.
for flags in "--compression=snappy" "--encrypt" "--compression=snappy --encrypt"; do
  # shellcheck disable=SC2086
  run --benchmarks=fillseq,replay --num=200 $flags --stats_interval_seconds=0
  if [ "$rc" -eq 0 ]; then
    expect_result fillseq 200
    expect_result replay 200
  elif [ "$rc" -ge 128 ]; then
    fail "$flags: crashed (exit $rc)"
  else
    expect_one_line_error "$flags"
  fi
done

# --- --use_direct_io reaches the WAL; the header says which path is active
# (O_DIRECT, or buffered writes where the file system refuses it) and each
# fill how much of what it wrote was padding.
run --benchmarks=rawsync,rawwrite,fillsync --num=2000 --use_direct_io --stats_interval_seconds=0
if [ "$rc" -eq 0 ]; then
  expect_result rawsync 2
  expect_result rawwrite 2000
  expect_result fillsync 2
  grep -qE '^WAL writes: (O_DIRECT|write\(\)/fdatasync\(\) \(direct I/O refused)' "$TMP/out" ||
    fail "--use_direct_io: the header does not say the WAL's write path"
  grep -E '^fillsync ' "$TMP/out" | grep -qE '[0-9]+% padding\)' ||
    fail "--use_direct_io: fillsync does not report its padding"
  grep -q 'has no direct-I/O option' "$TMP/out" "$TMP/err" &&
    fail "--use_direct_io: the old note is still printed"
else
  expect_one_line_error "--use_direct_io (file system refuses O_DIRECT?)"
fi

# --- Bad flags: one line on stderr, non-zero exit, nothing on stdout.
run --benchmarks=fillseq,nosuch;               expect_one_line_error "unknown benchmark"
run --value_size=0;                            expect_one_line_error "value_size 0"
run --num=0;                                   expect_one_line_error "num 0 without duration"
run --threads=0;                               expect_one_line_error "threads 0"
run --replay_threads=65;                       expect_one_line_error "replay_threads 65"
run --compression=lz4;                         expect_one_line_error "unknown compression"
run --recovery_mode=sloppy;                    expect_one_line_error "unknown recovery mode"
run --rawsync_prealloc=maybe;                  expect_one_line_error "unknown prealloc"
run --benchmarks='fillsync[threads=0]';        expect_one_line_error "bracketed threads 0"
run --benchmarks='fillsync[color=red]';        expect_one_line_error "unknown bracketed setting"
run --benchmarks='fillsync[threads=2';         expect_one_line_error "unbalanced bracket"
run --benchmarks='fillsync[X0]';               expect_one_line_error "repeat count 0"
run --benchmarks='rawsync[prealloc=maybe]';    expect_one_line_error "bracketed prealloc"
run --benchmarks=,;                            expect_one_line_error "empty benchmark list"
run --no_such_flag=1;                          expect_one_line_error "unknown flag"
run --num=abc;                                 expect_one_line_error "non-numeric num"
run stray_argument;                            expect_one_line_error "positional argument"
grep -q 'unexpected argument' "$TMP/err" || fail "positional argument message: $(cat "$TMP/err")"

# --- --statistics prints the WAL's GetStats() after a fill.
run --benchmarks='fillsync[threads=2]' --num=4000 --statistics --stats_interval_seconds=0
[ "$rc" -eq 0 ] || fail "statistics: exit $rc: $(cat "$TMP/err")"
grep -q '^WAL statistics (fillsync\[threads=2\]):$' "$TMP/out" || fail "no WAL statistics header"
grep -q '^appends: 8$' "$TMP/out" || fail "statistics: appends is not 8: $(grep appends "$TMP/out")"
grep -q '^durable_lsn: 8$' "$TMP/out" || fail "statistics: durable_lsn is not 8"
grep -qE '^records_per_sync: count=[1-8] ' "$TMP/out" || fail "statistics: no records_per_sync histogram"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "PASS"
