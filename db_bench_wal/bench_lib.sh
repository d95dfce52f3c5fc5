# Shell functions of the benchmark suite (db_bench_wal/bench_suite.sh) that
# parse benchmark output, kept apart so db_bench_wal/bench_lib_test.sh can feed
# them canned output. Source it; it defines functions only.
#
# Both db_bench_wal and RocksDB's db_bench print one result line per
# benchmark run:
#   fillseq      :       0.412 micros/op 2427184 ops/sec 0.412 seconds 1000000 operations;  231.5 MB/s (3 segments)
# db_bench_wal adds "[MEDIAN n runs]" lines for repeated benchmarks, which
# repeat a run already printed and are skipped.

# parse_results BLOCK [LABEL] < output
# Prints each result line as
#   BLOCK/NAME<TAB>micros_per_op<TAB>ops_per_sec<TAB>seconds<TAB>MB_per_sec
# NAME is the benchmark's own name, or LABEL when given (a RocksDB run is
# named after what it measured, not "fillseq"). MB/s is empty when the line
# has none.
parse_results() {
  awk -v block="$1" -v label="${2:-}" '
    / micros\/op .* ops\/sec .* seconds .* operations;/ && !/\[MEDIAN/ {
      name = label != "" ? label : $1
      us = ""; ops = ""; secs = ""; mbs = ""
      for (i = 2; i <= NF; i++) {
        if ($i == "micros/op") us = $(i - 1)
        if ($i == "ops/sec") ops = $(i - 1)
        if ($i == "seconds") secs = $(i - 1)
        if ($i == "MB/s") mbs = $(i - 1)
      }
      print block "/" name "\t" us "\t" ops "\t" secs "\t" mbs
    }'
}

# difference_rows MINUEND SUBTRAHEND OUT < results.tsv
# For each k, the k-th result of MINUEND less the k-th of SUBTRAHEND in
# micros/op, printed as the k-th result of OUT (other fields empty). Used for
# the WAL's cost in RocksDB: fillseq with the WAL minus fillseq without, run
# after run. Runs past the shorter list are dropped.
difference_rows() {
  awk -F'\t' -v a="$1" -v b="$2" -v out="$3" '
    $1 == a { ua[++na] = $2 }
    $1 == b { ub[++nb] = $2 }
    END {
      n = na < nb ? na : nb
      for (k = 1; k <= n; k++) printf "%s\t%.3f\t\t\t\n", out, ua[k] - ub[k]
    }'
}

# memory_class GBPS THRESHOLD
# "cold" when first touch of fresh memory ran below THRESHOLD GB/s, else
# "warm"; "unknown" when GBPS is empty or zero.
memory_class() {
  awk -v r="${1:-}" -v t="$2" 'BEGIN {
    if (r == "" || r + 0 <= 0) print "unknown"
    else print (r + 0 < t + 0) ? "cold" : "warm"
  }'
}

# bench_root DIR
# The directory db_bench_wal makes its temporary directory in when TMPDIR is
# DIR: the first of DIR, /var/tmp and /tmp that is a writable directory not on
# tmpfs (else /tmp), so other tools can write on the same disk.
bench_root() {
  local d
  for d in "$1" /var/tmp /tmp; do
    if [ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ] &&
        [ "$(stat -f -c %T "$d" 2>/dev/null)" != tmpfs ]; then
      echo "$d"
      return 0
    fi
  done
  echo /tmp
}

# sized_num THREADS SECONDS < results.tsv
# The --num per thread that makes a run of the first result's rate (ops/sec,
# all threads) last SECONDS: at least 100, at most 100000.
sized_num() {
  awk -F'\t' -v t="$1" -v secs="$2" 'NR == 1 {
    n = int($3 / (t > 0 ? t : 1) * secs)
    if (n < 100) n = 100
    if (n > 100000) n = 100000
    print n
  }'
}

# threads_flag FLAG...
# The value of the last --threads=N among the flags, 1 if none.
threads_flag() {
  local t=1 f
  for f in "$@"; do
    case "$f" in --threads=*) t="${f#--threads=}" ;; esac
  done
  echo "$t"
}

# parse_raft_bench < raft_bench output
# raft_bench (raft/raft_bench.cc) prints one line per run:
#   run 2/3 window 64 segwal: 20512 commits/s (41030 in 2.000 s; ...)
#   run 2/3 window 64 raft_uv: 18734 commits/s (37470 in 2.001 s; ...)
# Prints each COMPLETE pair (a segwal run and the raft_uv run after it, same
# pair and window) as two result lines
#   raft/segwal_w64<TAB>micros_per_commit<TAB>commits_per_sec<TAB>seconds<TAB>
#   raft/raft_uv_w64<TAB>...
# so that the k-th runs of the two labels are neighbours (the summary's
# median of neighbouring ratios); a pair with a failed run is left out.
# tmpfs runs (`window 64 tmpfs:`, raft_uv with its files on tmpfs) print as
# raft/tmpfs_w64 lines, each on its own.
parse_raft_bench() {
  awk '
    $1 == "run" && $3 == "window" && $7 == "commits/s" && $6 + 0 > 0 {
      store = $5; sub(/:$/, "", store)
      key = $2 " " $4
      line = sprintf("raft/%s_w%s\t%.3f\t%s\t%s\t", store, $4, 1e6 / $6, $6, $10)
      if (store == "tmpfs") { print line }
      else if (store == "segwal") { pending[key] = line }
      else if (store == "raft_uv" && (key in pending)) {
        print pending[key]; print line; delete pending[key]
      }
    }'
}
