#!/usr/bin/env bash
# segwal's default benchmark suite, run by `make bench`
# (`bazel run -c opt //db_bench_wal:bench_suite`).
#
# First measures how fast this machine backs fresh memory (db_bench_wal
# firsttouch of 1 GiB in a new process: a freshly started VM is "cold"), then
# runs each micro-benchmark binary briefly (their usual Google Benchmark output
# scrolls by), then db_bench_wal in three blocks (100-byte records, 4 KiB
# records on a 1 GiB log, synced appends), then db_bench_wal alternating with
# RocksDB's db_bench (rocksdb-tools) on the same disk, then segkv against
# Redis (kv/segkv_bench.sh) and raft_bench (a 3-node libraft cluster on segwal
# against libraft's raft_uv, raft/raft_bench.cc), and prints ONE summary
# table whose ratios all come from this run, so they compare like with like on
# this machine. WAL figures are medians of five runs, interleaved with their
# baselines; rows with a target (issues 6, 13, 14 and 16) say whether this run meets
# it.
#
# Extra arguments are passed to every Google Benchmark binary, e.g.
#   bazel run -c opt //db_bench_wal:bench_suite -- --benchmark_filter=Crc32c
# Environment: SEGWAL_BENCH_MIN_TIME (seconds per micro-benchmark, default
# 0.2), SEGWAL_BENCH_DIR (where the file benchmarks write, default $TMPDIR or
# /tmp; db_bench_wal makes its temporary directory there), SEGWAL_DB_BENCH=0
# (skip db_bench_wal), SEGWAL_DB_BENCH_ARGS (extra db_bench_wal flags),
# SEGWAL_BENCH_RUNS (runs of each db_bench_wal measurement, default 5),
# SEGWAL_ROCKSDB=0 (skip RocksDB), SEGWAL_ROCKSDB_DB_BENCH (RocksDB's db_bench,
# default db_bench on PATH), SEGWAL_SEGKV_BENCH=0 (skip segkv_server against
# redis-server and segkv's recovery, kv/segkv_bench.sh), SEGWAL_RAFT_BENCH=0
# (skip raft_bench: a 3-node libraft cluster on segwal against raft_uv,
# raft/raft_bench.cc), SEGWAL_RAFT_BENCH_ARGS (extra raft_bench flags).
#
# To add a benchmark: add the binary to `data` in db_bench_wal/BUILD.bazel and
# to BENCHMARKS below (or a db_bench_wal run to DB_BENCH_BLOCKS), and the rows
# you want summarised to SUMMARY.
set -euo pipefail

MIN_TIME="${SEGWAL_BENCH_MIN_TIME:-0.2}"

# Benchmark binaries, as paths inside the workspace (runfiles of :bench_suite).
BENCHMARKS=(
  crypto/crc32c_benchmark
  env/env_benchmark
  wal/wal_codec_benchmark
)

# db_bench_wal runs: "block|flags". Results are named "<block>/<label>"; a
# label that runs several times is summarised by its median.
RUNS="${SEGWAL_BENCH_RUNS:-5}"
# "a,b" repeated RUNS times: "a,b,a,b,...".
Xn() {
  local out="$1" i
  for ((i = 1; i < RUNS; i++)); do out="$out,$1"; done
  echo "$out"
}
# "a,b,c,b,a,c,a,b,c,...", RUNS times: a and b swap places every other run, so
# neither always runs first (replay and firsttouch both leave freed memory
# behind for the other).
Xab() {
  local out="" i
  for ((i = 1; i <= RUNS; i++)); do
    if ((i % 2)); then out="$out,$1,$2,$3"; else out="$out,$2,$1,$3"; fi
  done
  echo "${out#,}"
}
DB_BENCH_BLOCKS=(
  # 100-byte records, 1M per run (156 MB framed, 3 segments); replay against
  # building the same records in fresh memory (firsttouch).
  "b100|--value_size=100 --num=1000000 --benchmarks=$(Xn rawwrite,fillseq),$(Xab firsttouch replay iterate)"
  # 4 KiB records: fills of 256 MiB against rawwrite (and without segment
  # rolls, to show what the synchronous roll costs), then a 1 GiB log of 17
  # segments to replay (against firsttouch of as many records), iterate and
  # reopen.
  "b4k|--value_size=4096 --num=65536 --open_count=5 --benchmarks=$(Xn 'rawwrite,fillseq,fillseq[segment_size=1099511627776]'),fillseq[num=262144],$(Xab 'firsttouch[num=262144]' replay iterate),openrecover"
  # Synced appends, 100 B: one thread against rawsync (into a zero-filled
  # preallocated file, and appending to a growing one), 16 threads against
  # one; then the costs of a segment roll and of deleting a segment.
  "sync|--value_size=100 --benchmarks=$(Xn 'rawsync[duration=1],fillsync[duration=1],rawsync[duration=1,prealloc=none],fillsync[threads=16,duration=1]'),rollover[num=100],truncate[num=100]"
)

# The machine's memory: first touch of 1 GiB in 4 KiB records (the b4k
# replay's result), in a process of its own before anything else runs. A
# freshly started VM of the kind the README's figures come from backs guest
# memory on first touch: 0.12-0.49 GB/s there, against 5-11 GB/s for memory
# the guest has used before. Below FIRST_TOUCH_WARM_GBPS the machine is
# "cold" and the replay figures are bounded by it.
FIRST_TOUCH_PROBE="--value_size=4096 --benchmarks=firsttouch[num=262144]"
FIRST_TOUCH_WARM_GBPS=1

# RocksDB beside segwal (issue 16): rounds of db_bench_wal and RocksDB
# db_bench runs, alternating, each a process of its own, on the disk
# db_bench_wal writes to. "name|tool|flags": tool dbw is db_bench_wal (result
# "rocks/<its label>"), rdb RocksDB's db_bench running fillseq with
# ROCKSDB_FLAGS (result "rocks/<name>"), rdbw the same after writing and
# deleting ROCKSDB_WARMUP_MIB of scratch file (db_bench_wal's
# --warmup_page_cache does that before its fillseq, so both fills start with
# page cache alike), rdbs a synced run. db_bench's fillseq runs --num
# operations per thread (its --duration is for random-order benchmarks only):
# a synced run's --num is sized for about a second on the README's machine in
# the first round, then from the rate of the round before (sync latency on a
# shared disk varies twentyfold). README.md, "RocksDB beside segwal", says why
# these flags.
ROCKSDB_ROUND=(
  "fillsync|dbw|--value_size=100 --benchmarks=rawsync[duration=1],fillsync[duration=1]"
  "rocksdb:fillseq[sync=1]|rdbs|--sync=1 --num=5000"
  "fillsync16|dbw|--value_size=100 --benchmarks=fillsync[threads=16,duration=1]"
  "rocksdb:fillseq[sync=1,threads=16]|rdbs|--sync=1 --threads=16 --num=1000"
  "fillseq|dbw|--value_size=100 --num=500000 --benchmarks=fillseq"
  "rocksdb:fillseq|rdbw|--num=500000"
  "rocksdb:fillseq[disable_wal=1]|rdbw|--num=500000 --disable_wal=1"
)
# About what 500K records of RocksDB's WAL take (16 B key, 100 B value, a
# write batch each).
ROCKSDB_WARMUP_MIB=80
ROCKSDB_FLAGS=(
  --benchmarks=fillseq --value_size=100 --key_size=16 --use_existing_db=0
  --compression_type=none --write_buffer_size=$((512 << 20))
  --max_write_buffer_number=2 --disable_auto_compactions=1
  --writable_file_max_buffer_size=$((1 << 20)) --wal_bytes_per_sync=0
  --bytes_per_sync=0 --use_fsync=0 --statistics=0 --histogram=0
  --stats_interval_seconds=0 --seed=301
)

# Summary rows: "label|numerator|denominator|how|target".
#   how ""     numerator bytes/s over denominator bytes/s (Google Benchmark)
#       ops    ops/sec ratio (db_bench_wal)
#       time   numerator micros/op over denominator seconds per run
#       oprt   numerator micros/op over denominator micros/op
#       us     the numerator's micros/op (no denominator)
#       GBps   the numerator's payload GB/s (10^9 bytes)
#       Mrps   the numerator's million records (operations) per second
#   target ">=x" or "<=x" on the ratio or value; empty for none.
SUMMARY=(
  "CRC32C fast/portable, 64 B|BM_Crc32cFast/64|BM_Crc32cPortable/64||"
  "CRC32C fast/portable, 4 KiB|BM_Crc32cFast/4096|BM_Crc32cPortable/4096||"
  "CRC32C fast/portable, 1 MiB|BM_Crc32cFast/1048576|BM_Crc32cPortable/1048576||"
  "Append POSIX/mem, 100 B, no sync|BM_PosixAppend/record_bytes:100/sync_every:0/real_time|BM_MemAppend/record_bytes:100/sync_every:0/real_time||"
  "Append POSIX/mem, 100 B, sync/100|BM_PosixAppend/record_bytes:100/sync_every:100/real_time|BM_MemAppend/record_bytes:100/sync_every:100/real_time||"
  "Append POSIX/mem, 4 KiB, no sync|BM_PosixAppend/record_bytes:4096/sync_every:0/real_time|BM_MemAppend/record_bytes:4096/sync_every:0/real_time||"
  "Append POSIX/mem, 4 KiB, sync/100|BM_PosixAppend/record_bytes:4096/sync_every:100/real_time|BM_MemAppend/record_bytes:4096/sync_every:100/real_time||"
  "Append AES/plain, 4 KiB, POSIX|BM_Append/posix_encrypted/4096|BM_Append/posix_plain/4096||>=0.6"
  "Append AES/plain, 4 KiB, mem|BM_Append/mem_encrypted/4096|BM_Append/mem_plain/4096||"
  "Append snappy/plain, 4 KiB, POSIX|BM_Append/posix_snappy/4096|BM_Append/posix_plain/4096||"
  "Append both/plain, 4 KiB, POSIX|BM_Append/posix_both/4096|BM_Append/posix_plain/4096||"
  "Replay AES/plain, 4 KiB, POSIX|BM_Replay/posix_encrypted/4096|BM_Replay/posix_plain/4096||"
  "Replay snappy/plain, 4 KiB, POSIX|BM_Replay/posix_snappy/4096|BM_Replay/posix_plain/4096||"
  "Replay both/plain, 4 KiB, POSIX|BM_Replay/posix_both/4096|BM_Replay/posix_plain/4096||"
  "fillsync/rawsync, 100 B, 1 thread|sync/fillsync[duration=1]|sync/rawsync[duration=1]|ops|>=0.95"
  "fillsync/rawsync unpreallocated|sync/fillsync[duration=1]|sync/rawsync[duration=1,prealloc=none]|ops|"
  "fillsync 16 thr/1 thr, 100 B|sync/fillsync[threads=16,duration=1]|sync/fillsync[duration=1]|ops|>=8"
  "fillseq/rawwrite, 100 B|b100/fillseq|b100/rawwrite|ops|"
  "fillseq, 100 B: us/record|b100/fillseq||us|<=0.3"
  "fillseq/rawwrite, 4 KiB|b4k/fillseq|b4k/rawwrite|ops|>=0.8"
  "fillseq, 4 KiB: GB/s|b4k/fillseq||GBps|>=2"
  "fillseq no rolls/rawwrite, 4 KiB|b4k/fillseq[segment_size=1099511627776]|b4k/rawwrite|ops|"
  "replay/firsttouch, 4 KiB|b4k/replay|b4k/firsttouch[num=262144]|ops|>=0.8"
  "replay, 4 KiB: GB/s|b4k/replay||GBps|"
  "firsttouch, 4 KiB: GB/s|b4k/firsttouch[num=262144]||GBps|"
  "iterate, 4 KiB: GB/s|b4k/iterate||GBps|>=2"
  "replay/firsttouch, 100 B|b100/replay|b100/firsttouch|ops|>=0.8"
  "replay, 100 B: M records/s|b100/replay||Mrps|"
  "firsttouch, 100 B: M records/s|b100/firsttouch||Mrps|"
  "iterate, 100 B: M records/s|b100/iterate||Mrps|>=5"
  "openrecover/replay, 1 GiB log|b4k/openrecover|b4k/replay|time|<=0.05"
  "openrecover/iterate, 1 GiB log|b4k/openrecover|b4k/iterate|time|"
  "segment roll/rawsync op|sync/rollover[num=100]|sync/rawsync[duration=1]|oprt|"
  "truncate 1 segment/rawsync op|sync/truncate[num=100]|sync/rawsync[duration=1]|oprt|"
  "fillsync/RocksDB, 100 B, 1 thread|rocks/fillsync[duration=1]|rocks/rocksdb:fillseq[sync=1]|ops|>=1.1"
  "RocksDB/rawsync, 100 B, 1 thread|rocks/rocksdb:fillseq[sync=1]|rocks/rawsync[duration=1]|ops|"
  "fillsync/RocksDB, 16 threads|rocks/fillsync[threads=16,duration=1]|rocks/rocksdb:fillseq[sync=1,threads=16]|ops|>=2.5"
  "WAL cost/record, RocksDB/segwal|rocks/rocksdb:wal_cost|rocks/fillseq|oprt|>=15"
  # segkv_server against redis-server --appendfsync always (kv/segkv_bench.sh;
  # issue 13 targets).
  "segkv/Redis AOF SET, 1 client|segkv/set_c1|redis_aof/set_c1|ops|>=1.0"
  "segkv/Redis AOF SET, 50 clients|segkv/set_c50|redis_aof/set_c50|ops|>=1.3"
  "segkv/Redis AOF GET, 1 client|segkv/get_c1|redis_aof/get_c1|ops|"
  "segkv/Redis AOF GET, 50 clients|segkv/get_c50|redis_aof/get_c50|ops|>=0.8"
  # Commits/s of a 3-node libraft cluster (one process, 127.0.0.1) with segwal
  # as its log store against libraft's raft_uv, 104 B entries, a window of
  # raft_apply calls in flight (raft/raft_bench.cc; issue 14 targets).
  "raft commits segwal/raft_uv, window 1|raft/segwal_w1|raft/raft_uv_w1|ops|>=1.0"
  "raft commits segwal/raft_uv, window 64|raft/segwal_w64|raft/raft_uv_w64|ops|>=1.3"
  "raft commits segwal/raft_uv, window 256|raft/segwal_w256|raft/raft_uv_w256|ops|>=1.0"
  # The same cluster with raft_uv's files on tmpfs (storage costs almost
  # nothing) over raft_uv on disk: how much of the rate storage sets at all.
  "raft raft_uv on tmpfs/on disk, window 1|raft/tmpfs_w1|raft/raft_uv_w1|ops|"
  "raft raft_uv on tmpfs/on disk, window 64|raft/tmpfs_w64|raft/raft_uv_w64|ops|"
  # A 3-member segkv cluster (raft, segwal as its log) over the single node
  # (kv/segkv_bench.sh; issue 14).
  "segkv 3-node/1-node SET, 50 clients|segkv_cluster/set_c50|segkv/set_c50|ops|"
)

# Finds a binary (or with -f, any file) among this script's runfiles. `bazel
# run` starts us in <runfiles>/segwal; a direct bazel-bin/... invocation has
# <script>.runfiles.
runfile() {
  local test=-x
  if [ "$1" = -f ]; then test=-f; shift; fi
  local rel="$1" root
  for root in "${RUNFILES_DIR:-}" "$0.runfiles"; do
    if [ -n "$root" ] && [ $test "$root/segwal/$rel" ]; then
      echo "$root/segwal/$rel"
      return 0
    fi
  done
  if [ $test "$rel" ]; then
    echo "$PWD/$rel"
    return 0
  fi
  echo "bench_suite: $rel not found in runfiles (is it in data?)" >&2
  return 1
}

lib="$(runfile -f db_bench_wal/bench_lib.sh)"
# shellcheck source=db_bench_wal/bench_lib.sh
. "$lib"

results="$(mktemp -d)"
rocksdb_dir=""
trap 'rm -rf "$results" ${rocksdb_dir:+"$rocksdb_dir"}' EXIT

start=$SECONDS
failed=()
bench_dir="${SEGWAL_BENCH_DIR:-${TMPDIR:-/tmp}}"
dbb=""
if [ "${SEGWAL_DB_BENCH:-1}" != 0 ]; then
  dbb="$(runfile db_bench_wal/db_bench_wal)" || failed+=(db_bench_wal)
fi

# Splits flags on spaces without globbing their brackets, into args.
split_flags() {
  set -f
  # shellcheck disable=SC2206
  args=($1)
  set +f
}

# Before anything else touches memory: how fast does this machine back it?
first_touch_gbps=""
if [ -n "$dbb" ]; then
  echo "=== db_bench_wal (first touch of fresh memory) $FIRST_TOUCH_PROBE"
  split_flags "$FIRST_TOUCH_PROBE"
  if TMPDIR="$bench_dir" "$dbb" "${args[@]}" --stats_interval_seconds=0 \
      | tee "$results/dbb_probe.txt"; then
    first_touch_gbps="$(parse_results probe <"$results/dbb_probe.txt" |
      awk -F'\t' 'NR == 1 { printf "%.2f", $5 * 1048576 / 1e9 }')"
  else
    failed+=("db_bench_wal (first touch)")
  fi
  echo
fi

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

# db_bench_wal result lines as
# "block/label<TAB>micros_per_op<TAB>ops_per_sec<TAB>seconds<TAB>MB_per_sec".
: >"$results/dbb.tsv"
if [ -n "$dbb" ]; then
  for block in "${DB_BENCH_BLOCKS[@]}"; do
    name="${block%%|*}"
    flags="${block#*|}"
    echo "=== db_bench_wal ($name) $flags"
    block_start=$SECONDS
    split_flags "$flags ${SEGWAL_DB_BENCH_ARGS:-}"
    if TMPDIR="$bench_dir" "$dbb" "${args[@]}" \
        --compare --stats_interval_seconds=10 | tee "$results/dbb_$name.txt"; then
      parse_results "$name" <"$results/dbb_$name.txt" >>"$results/dbb.tsv"
    else
      failed+=("db_bench_wal ($name)")
    fi
    echo "=== db_bench_wal ($name) took $((SECONDS - block_start)) s"
    echo
  done
  sed -n 's/^CPU: *//p' "$results/dbb_b100.txt" 2>/dev/null | head -n1 >"$results/cpu.txt" || true
fi

# RocksDB beside segwal: RUNS rounds of ROCKSDB_ROUND.
rocksdb_note=""
rocksdb_bin="${SEGWAL_ROCKSDB_DB_BENCH:-db_bench}"
if [ -z "$dbb" ] || [ "${SEGWAL_ROCKSDB:-1}" = 0 ]; then
  rocksdb_note="RocksDB comparison skipped"
elif ! rocksdb_bin="$(command -v "$rocksdb_bin")"; then
  rocksdb_note="RocksDB db_bench not installed (Debian rocksdb-tools)"
  echo "=== RocksDB: $rocksdb_note; its rows are left out" >&2
else
  rocksdb_dir="$(mktemp -d "$(bench_root "$bench_dir")/segwal_rocksdb.XXXXXX")"
  rocksdb_version="$("$rocksdb_bin" --version 2>/dev/null | head -n1 || true)"
  echo "=== RocksDB beside db_bench_wal: $RUNS rounds, ${rocksdb_version:-$rocksdb_bin}, in $rocksdb_dir"
  block_start=$SECONDS
  declare -A sized=()  # name -> --num for the next synced run
  for ((round = 1; round <= RUNS; round++)); do
    for run in "${ROCKSDB_ROUND[@]}"; do
      name="${run%%|*}"
      rest="${run#*|}"
      tool="${rest%%|*}"
      split_flags "${rest#*|}"
      if [ -n "${sized[$name]:-}" ]; then
        for i in "${!args[@]}"; do
          case "${args[$i]}" in --num=*) args[$i]="--num=${sized[$name]}" ;; esac
        done
      fi
      out="$results/rocks_${round}_${name//[^A-Za-z0-9_]/_}.txt"
      if [ "$tool" = dbw ]; then
        echo "--- round $round: db_bench_wal ${rest#*|}"
        ok=0
        TMPDIR="$bench_dir" "$dbb" "${args[@]}" --stats_interval_seconds=0 \
          >"$out" 2>&1 || ok=$?
        label=""
      else
        echo "--- round $round: db_bench ${args[*]}"
        rm -rf "$rocksdb_dir/db"
        if [ "$tool" = rdbw ]; then
          head -c $((ROCKSDB_WARMUP_MIB << 20)) /dev/zero >"$rocksdb_dir/warmup"
          rm -f "$rocksdb_dir/warmup"
        fi
        ok=0
        "$rocksdb_bin" "${ROCKSDB_FLAGS[@]}" --db="$rocksdb_dir/db" \
          --wal_dir="$rocksdb_dir/db" "${args[@]}" >"$out" 2>&1 || ok=$?
        label="$name"
      fi
      if [ $ok -eq 0 ] && grep -q ' micros/op ' "$out"; then
        grep ' micros/op ' "$out" | grep -v '\[MEDIAN' | sed 's/^/    /'
        parse_results rocks "$label" <"$out" >>"$results/dbb.tsv"
        if [ "$tool" = rdbs ]; then
          sized[$name]="$(parse_results rocks "$label" <"$out" |
            sized_num "$(threads_flag "${args[@]}")" 1)"
        fi
      else
        failed+=("round $round: $name")
        sed 's/^/    | /' "$out" | tail -n 5 >&2
      fi
    done
  done
  rm -rf "$rocksdb_dir/db"
  difference_rows rocks/rocksdb:fillseq 'rocks/rocksdb:fillseq[disable_wal=1]' \
    rocks/rocksdb:wal_cost <"$results/dbb.tsv" >"$results/walcost.tsv"
  cat "$results/walcost.tsv" >>"$results/dbb.tsv"
  echo "=== RocksDB beside db_bench_wal took $((SECONDS - block_start)) s"
  echo
fi

# segkv_server against redis-server, and segkv's recovery
# (kv/segkv_bench.sh): result lines join db_bench_wal's in dbb.tsv.
if [ "${SEGWAL_SEGKV_BENCH:-1}" != 0 ]; then
  echo "=== segkv (kv/segkv_bench.sh)"
  if skb="$(runfile kv/segkv_bench)" && sks="$(runfile kv/segkv_server)" &&
      skr="$(runfile kv/segkv_recovery_bench)"; then
    "$skb" "$sks" "$skr" "$results/dbb.tsv" "$results/segkv_recovery.txt" || failed+=(segkv_bench)
  else
    failed+=(segkv_bench)
  fi
  echo
fi

# libraft on segwal against libraft's raft_uv (raft/raft_bench.cc): its
# complete pairs of runs join dbb.tsv as raft/segwal_wN and raft/raft_uv_wN.
if [ "${SEGWAL_RAFT_BENCH:-1}" != 0 ]; then
  echo "=== raft_bench (libraft on segwal vs raft_uv)"
  block_start=$SECONDS
  if rb="$(runfile raft/raft_bench)"; then
    split_flags "${SEGWAL_RAFT_BENCH_ARGS:-}"
    if "$rb" --dir="$(bench_root "$bench_dir")" ${args[@]+"${args[@]}"} |
        tee "$results/raft_bench.txt"; then
      :
    else
      failed+=(raft_bench)
    fi
    parse_raft_bench <"$results/raft_bench.txt" >>"$results/dbb.tsv"
  else
    failed+=(raft_bench)
  fi
  echo "=== raft_bench took $((SECONDS - block_start)) s"
  echo
fi

machine="$(cat "$results/cpu.txt" 2>/dev/null || true)"
[ -n "$machine" ] || machine="$(nproc) CPUs"
fsdir="${SEGWAL_BENCH_DIR:-${TMPDIR:-/tmp}}"
fs="$(df -T "$fsdir" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')"
machine="$machine, $(uname -r), files on $fsdir (${fs:-?})"

memory="$(memory_class "$first_touch_gbps" "$FIRST_TOUCH_WARM_GBPS")"
printf '%s\n' "${SUMMARY[@]}" | awk -F'|' -v tsv="$results/all.tsv" \
    -v dbb="$results/dbb.tsv" -v machine="$machine" -v runs="$RUNS" \
    -v rocksdb_note="$rocksdb_note" -v ft="$first_touch_gbps" \
    -v memory="$memory" -v ft_warm="$FIRST_TOUCH_WARM_GBPS" '
  BEGIN {
    while ((getline line < tsv) > 0) {
      split(line, f, "\t")
      if (f[2] != "") bps[f[1]] = f[2] + 0
    }
    # Several runs of one label: keep every value, take the median below.
    while ((getline line < dbb) > 0) {
      split(line, f, "\t")
      n = ++count[f[1]]
      us[f[1], n] = f[2] + 0; ops[f[1], n] = f[3] + 0
      secs[f[1], n] = f[4] + 0; mbs[f[1], n] = f[5] + 0
    }
  }
  function median(arr, key,    n, i, j, v, t) {
    n = count[key]
    for (i = 1; i <= n; i++) v[i] = arr[key, i]
    for (i = 2; i <= n; i++) {
      t = v[i]
      for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
      v[j + 1] = t
    }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function human(b) {
    if (b >= 2^30) return sprintf("%.2f GiB/s", b / 2^30)
    if (b >= 2^20) return sprintf("%.1f MiB/s", b / 2^20)
    return sprintf("%.1f KiB/s", b / 2^10)
  }
  function rate(o) {
    if (o >= 1e6) return sprintf("%.2fM op/s", o / 1e6)
    if (o >= 1e3) return sprintf("%.1fK op/s", o / 1e3)
    return sprintf("%.0f op/s", o)
  }
  function duration(s) {
    if (s >= 1) return sprintf("%.2f s", s)
    if (s >= 1e-3) return sprintf("%.2f ms", s * 1e3)
    return sprintf("%.3f us", s * 1e6)
  }
  # One run of a db_bench label as the row compares it: its k-th value.
  function runval(name, how, role, k) {
    if (how == "ops") return ops[name, k]
    if (how == "oprt") return us[name, k]
    if (how == "time") return role == "num" ? us[name, k] / 1e6 : secs[name, k]
    return 0
  }
  # Runs of numerator and denominator were interleaved: with as many of each,
  # the ratio is the median of the ratios of neighbouring runs (robust to a
  # machine whose speed drifts during the suite); else a ratio of medians.
  function paired_ratio(nname, dname, how,    n, k, v, i, j, t) {
    n = count[nname]
    if (how == "" || n < 2 || count[dname] != n) return -1
    for (k = 1; k <= n; k++) {
      if (runval(dname, how, "den", k) <= 0) return -1
      v[k] = runval(nname, how, "num", k) / runval(dname, how, "den", k)
    }
    for (i = 2; i <= n; i++) {
      t = v[i]
      for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
      v[j + 1] = t
    }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  # Cell text for one side of a row, and its value in *val (via globals).
  function side(name, how, role) {
    if (how == "") {
      if (!(name in bps)) return "n/a"
      val = bps[name]
      return human(val)
    }
    if (!(name in count)) return "n/a"
    if (how == "ops") { val = median(ops, name); return rate(val) }
    if (how == "oprt") { val = median(us, name); return duration(val / 1e6) }
    if (how == "time") {
      if (role == "num") { val = median(us, name) / 1e6 } else { val = median(secs, name) }
      return duration(val)
    }
    if (how == "us") { val = median(us, name); return sprintf("%.3f us/op", val) }
    if (how == "GBps") { val = median(mbs, name) * 1048576 / 1e9; return sprintf("%.2f GB/s", val) }
    if (how == "Mrps") { val = median(ops, name) / 1e6; return sprintf("%.2fM rec/s", val) }
    return "?"
  }
  { rows[NR] = $0 }
  END {
    fmt = "%-40s %13s %13s %9s %8s %5s\n"
    print "==================== segwal benchmark summary ===================="
    print "machine: " machine
    if (memory == "unknown") {
      print "memory: first touch not measured"
    } else {
      printf "memory: %s: first touch of 1 GiB in 4 KiB records in a fresh process ran at %s GB/s (cold below %s GB/s: a freshly started VM backs guest memory on first touch)\n", memory, ft, ft_warm
    }
    # What every synced row is bounded by: the sync latency of the disk.
    if ("sync/rawsync[duration=1]" in count) {
      printf "disk: pwrite+fdatasync of a 156 B record into a preallocated file: %s (%s), median of this run\n", \
        duration(median(us, "sync/rawsync[duration=1]") / 1e6), rate(median(ops, "sync/rawsync[duration=1]"))
    }
    printf fmt, "measure", "numerator", "denominator", "ratio", "target", ""
    misses = 0; checked = 0
    for (i = 1; i <= NR; i++) {
      split(rows[i], r, "|")
      how = r[4]; target = r[5]
      val = 0; numtxt = side(r[2], how, "num"); num = val; have_num = numtxt != "n/a"
      dentxt = ""; have_den = 1
      if (r[3] != "") { val = 0; dentxt = side(r[3], how, "den"); den = val; have_den = dentxt != "n/a" }
      value = ""; status = ""
      if (have_num && have_den) {
        if (r[3] == "") {
          x = num; value = ""
        } else if (den > 0) {
          x = paired_ratio(r[2], r[3], how)
          if (x < 0) x = num / den
          value = sprintf("%.2fx", x)
          if (x < 0.1) value = sprintf("%.3fx", x)
        } else {
          have_num = 0
        }
      }
      if (target != "" && have_num && have_den) {
        checked++
        t = substr(target, 3) + 0
        ok = (substr(target, 1, 2) == ">=") ? (x >= t) : (x <= t)
        status = ok ? "ok" : "MISS"
        if (!ok) misses++
      } else if (target != "") {
        status = "n/a"
      }
      if (rocksdb_note != "" && rows[i] ~ /\|rocks\//) {
        printf "%-40s %s\n", r[1], rocksdb_note
        continue
      }
      printf fmt, r[1], numtxt, dentxt, value, target, status
    }
    print "ratio = numerator / denominator, same run: bytes/s for the micro-benchmarks;"
    print "for db_bench_wal ops/sec (medians of " runs " runs; ratio = median of the ratios of"
    print "neighbouring interleaved runs), time = one Open over one full pass."
    print "firsttouch: the replay result built in fresh memory, no I/O (its ceiling)."
    print "RocksDB: Debian rocksdb-tools db_bench fillseq (README.md, \"RocksDB beside"
    print "segwal\"), each run a process alternating with those of db_bench_wal; WAL cost ="
    print "RocksDB micros/op with the WAL minus without, over segwal fillseq micros/op."
    print "RocksDB/rawsync near 1x: the disk sets both synced rates, and no WAL writing"
    print "one record per sync can be much faster than RocksDB on it."
    print "segkv/Redis AOF: redis-benchmark -d 100 against segkv_server and redis-server"
    print "--appendfsync always, 3 interleaved runs each (kv/segkv_bench.sh)."
    print "raft commits: raft_bench, 3 libraft nodes in one process on 127.0.0.1, commits/s"
    print "with segwal as the log store vs libraft raft_uv, 3 interleaved pairs per window."
    print "Targets are issue 6, 13, 14 and 16 goals: " (checked - misses) " of " checked " met in this run" \
      (memory == "unknown" ? "." : " (" memory " machine).")
  }'
cat "$results/segkv_recovery.txt" 2>/dev/null || true
echo "suite time: $((SECONDS - start)) s, min time per micro-benchmark: ${MIN_TIME} s"

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench_suite: failed: ${failed[*]}" >&2
  exit 1
fi
