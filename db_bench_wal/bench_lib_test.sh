#!/usr/bin/env bash
# The benchmark suite's parsers (db_bench_wal/bench_lib.sh) on canned output:
# db_bench_wal result and [MEDIAN] lines, RocksDB 7.8.3 db_bench's header and
# result lines, raft_bench's run lines (complete pairs only), the WAL cost
# computed run by run, the cold/warm class and the choice of a disk-backed
# directory.
#
#   bazel test //db_bench_wal:bench_lib_test
#   db_bench_wal/bench_lib_test.sh        # by hand, from the workspace root
set -uo pipefail

LIB=""
for c in "${TEST_SRCDIR:-}/segwal/db_bench_wal/bench_lib.sh" \
         "db_bench_wal/bench_lib.sh"; do
  if [ -f "$c" ]; then LIB="$c"; break; fi
done
[ -n "$LIB" ] || { echo "bench_lib.sh not found" >&2; exit 1; }
# shellcheck source=db_bench_wal/bench_lib.sh
. "$LIB"

failures=0
expect_eq() {  # description, got, want
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1" >&2
    echo "  got:  $(printf '%q' "$2")" >&2
    echo "  want: $(printf '%q' "$3")" >&2
    failures=$((failures + 1))
  fi
}
T=$'\t'

# --- db_bench_wal: every result line, [MEDIAN] lines skipped, the extra
# text after MB/s ignored, bracketed labels kept.
got="$(parse_results b4k <<'EOF'
db_bench_wal: segwal SegmentedWal, 1 thread
fillseq      :       0.184 micros/op 5427973 ops/sec 0.184 seconds 1000000 operations;  517.7 MB/s (3 segments)
fillseq[X3]  :       0.190 micros/op 5263157 ops/sec 0.190 seconds 1000000 operations;  501.9 MB/s
fillseq [MEDIAN 3 runs] :       0.184 micros/op 5427973 ops/sec 0.184 seconds 1000000 operations;  517.7 MB/s
firsttouch[num=262144] :  437612.123 micros/op 599035 ops/sec 0.438 seconds 262144 operations; 2340.0 MB/s (262144 records, 2 threads, 1 pass)
Comparison (ratios measured in this run):
EOF
)"
expect_eq "db_bench_wal lines" "$got" \
"b4k/fillseq${T}0.184${T}5427973${T}0.184${T}517.7
b4k/fillseq[X3]${T}0.190${T}5263157${T}0.190${T}501.9
b4k/firsttouch[num=262144]${T}437612.123${T}599035${T}0.438${T}2340.0"

# --- RocksDB 7.8.3 db_bench (Debian rocksdb-tools): the header is skipped,
# the result line renamed after what it measured.
ROCKSDB_OUT='Set seed to 301 because --seed was 0
Initializing RocksDB Options from the specified file
Initializing RocksDB Options from command-line flags
Integrated BlobDB: blob cache disabled
RocksDB:    version 7.8.3
Date:       Fri Dec  4 11:28:14 2026
CPU:        2 * AMD EPYC
Keys:       16 bytes each (+ 0 bytes user-defined timestamp)
Values:     100 bytes each (50 bytes after compression)
Entries:    6000
WARNING: Assertions are enabled; benchmarks unnecessarily slow
------------------------------------------------
DB path: [/tmp/segwal_rocksdb.abc/db]
fillseq      :     158.730 micros/op 6300 ops/sec 0.952 seconds 6000 operations;    0.7 MB/s'
got="$(parse_results rocks 'rocksdb:fillseq[sync=1]' <<<"$ROCKSDB_OUT")"
expect_eq "RocksDB line" "$got" \
  "rocks/rocksdb:fillseq[sync=1]${T}158.730${T}6300${T}0.952${T}0.7"

# Sixteen threads: the same line; no result line at all (db_bench failed
# after its header): no row.
got="$(parse_results rocks x <<<'fillseq      :     694.444 micros/op 23040 ops/sec 1.042 seconds 24000 operations;    2.5 MB/s')"
expect_eq "RocksDB 16 threads" "$got" "rocks/x${T}694.444${T}23040${T}1.042${T}2.5"
got="$(parse_results rocks x <<<"${ROCKSDB_OUT%fillseq *}")"
expect_eq "no result line" "$got" ""

# --- WAL cost: run k with the WAL minus run k without; an unpaired run is
# dropped; other labels are ignored.
got="$(difference_rows a b cost <<EOF
a${T}2.500${T}400000${T}2.5${T}46.0
rocks/fillseq${T}0.085${T}1${T}1${T}1
b${T}1.250${T}800000${T}1.25${T}92.0
a${T}2.000${T}500000${T}2.0${T}57.0
b${T}1.500${T}666666${T}1.5${T}76.0
a${T}9.000${T}1${T}1${T}1
EOF
)"
expect_eq "difference_rows" "$got" "cost${T}1.250${T}${T}${T}
cost${T}0.500${T}${T}${T}"
got="$(difference_rows a b cost </dev/null)"
expect_eq "difference_rows, no runs" "$got" ""

# --- Sizing a synced RocksDB run from the previous one's rate.
expect_eq "sized 1 thread" \
  "$(sized_num 1 1 <<<"rocks/x${T}158.730${T}6300${T}0.952${T}0.7")" 6300
expect_eq "sized 16 threads" \
  "$(sized_num 16 1 <<<"rocks/x${T}694.444${T}23040${T}1.042${T}2.5")" 1440
expect_eq "sized, slow disk" "$(sized_num 16 1 <<<"rocks/x${T}1${T}300${T}1${T}0")" 100
expect_eq "sized, fast" "$(sized_num 1 1 <<<"rocks/x${T}1${T}900000${T}1${T}0")" 100000
expect_eq "threads_flag" "$(threads_flag --sync=1 --threads=16 --num=5)" 16
expect_eq "threads_flag, last wins" "$(threads_flag --threads=4 --threads=8)" 8
expect_eq "threads_flag, none" "$(threads_flag --sync=1)" 1

# --- raft_bench: complete pairs only, segwal then raft_uv; a pair with a
# failed run is left out; tmpfs runs (raft_uv on tmpfs) are kept each; the
# summary lines are not runs.
got="$(parse_raft_bench <<'EOF'
raft_bench: 3 nodes on 127.0.0.1, entries of 104 B, 2.00 s measured after 0.50 s warm-up, 3 pairs per window, in /var/tmp/raft_bench.x
run 1/3 window 64 segwal: 20000 commits/s (40000 in 2.000 s; leader after 1.03 s, 0 leader changes, 0 failed applies; CPU per second: loop 0.59, process 0.70)
    node 1: 14600 records, 433 fsyncs, records/fsync avg 33.8, fsync us avg 2573 p99<=128084
run 1/3 window 64 raft_uv: 16000 commits/s (32032 in 2.002 s; leader after 1.17 s, 0 leader changes, 0 failed applies; CPU per second: loop 0.38, process 0.43)
run 1/3 window 64 tmpfs: 32000 commits/s (64000 in 2.000 s; leader after 1.01 s)
run 2/3 window 64 segwal: FAILED: no leader elected
run 2/3 window 64 raft_uv: 15000 commits/s (30000 in 2.000 s; leader after 1.17 s)
run 3/3 window 64 segwal: 25000 commits/s (50000 in 2.000 s; leader after 1.03 s)
run 3/3 window 64 raft_uv: FAILED: raft_start: x
run 1/3 window 256 segwal: 500 commits/s (1000 in 2.000 s; leader after 1.03 s)
run 1/3 window 256 raft_uv: 400 commits/s (800 in 2.000 s; leader after 1.03 s)
raft_uv on tmpfs (storage costs almost nothing), commits/s: window 64 32000 (2.00x raft_uv on disk)
window 64: segwal 20000 commits/s, raft_uv 16000 commits/s, ratio 1.25x
EOF
)"
expect_eq "raft_bench pairs" "$got" \
"raft/segwal_w64${T}50.000${T}20000${T}2.000${T}
raft/raft_uv_w64${T}62.500${T}16000${T}2.002${T}
raft/tmpfs_w64${T}31.250${T}32000${T}2.000${T}
raft/segwal_w256${T}2000.000${T}500${T}2.000${T}
raft/raft_uv_w256${T}2500.000${T}400${T}2.000${T}"

# --- Cold or warm.
expect_eq "cold" "$(memory_class 0.41 1)" cold
expect_eq "warm" "$(memory_class 5.20 1)" warm
expect_eq "at the threshold" "$(memory_class 1.00 1)" warm
expect_eq "not measured" "$(memory_class "" 1)" unknown
expect_eq "zero" "$(memory_class 0 1)" unknown

# --- bench_root: a missing directory falls through to a real one.
root="$(bench_root /nonexistent/dir)"
[ -d "$root" ] && [ -w "$root" ] || expect_eq "bench_root" "$root" "a writable dir"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/bench_lib_test.XXXXXX")"
if [ "$(stat -f -c %T "$tmp")" != tmpfs ]; then
  expect_eq "bench_root keeps a disk directory" "$(bench_root "$tmp")" "$tmp"
fi
rm -rf "$tmp"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
