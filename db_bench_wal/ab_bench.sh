#!/usr/bin/env bash
# ab_bench.sh: two builds of db_bench_wal, A and B (say, main and a branch),
# run interleaved on the same disk in the same minutes, so a before/after
# comparison does not measure the machine's drift. For each benchmark: the
# median ops/sec of A and of B over the rounds, and the median of the rounds'
# B/A ratios (each round runs A then B, or B then A in odd rounds, so neither
# always finds the page cache the other left).
#
#   db_bench_wal/ab_bench.sh A_BINARY B_BINARY [ROUNDS (5)] [BENCHMARKS]
#
# BENCHMARKS: a db_bench_wal --benchmarks list (default: the write and read
# rows of make bench at 100 B and 4 KiB). Extra flags for both binaries:
# AB_BENCH_ARGS. Prints one line per benchmark:
#   fillseq[num=500000]: A 5.12M ops/s, B 5.30M ops/s, B/A 1.03x (5 rounds: 0.98-1.07)
set -euo pipefail
a=${1:?A binary}
b=${2:?B binary}
rounds=${3:-5}
benchmarks=${4:-'fillseq[num=500000],fillseq[value_size=4096,num=65536],fillsync[duration=1],fillsync[threads=16,duration=1],replay,iterate'}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 0; r < rounds; r++)); do
  order=(a b)
  if ((r % 2)); then order=(b a); fi
  for side in "${order[@]}"; do
    bin=$a
    [ "$side" = b ] && bin=$b
    # shellcheck disable=SC2086
    "$bin" --benchmarks="$benchmarks" --value_size=100 ${AB_BENCH_ARGS:-} \
      >"$out/$side.$r" 2>&1 || { echo "ab_bench: $bin failed:"; tail -5 "$out/$side.$r"; exit 1; }
  done
done
# "name : x micros/op y ops/sec ..." lines -> name side round ops
for f in "$out"/[ab].*; do
  side=$(basename "$f" | cut -d. -f1)
  round=$(basename "$f" | cut -d. -f2)
  awk -v s="$side" -v r="$round" '/ micros\/op .* ops\/sec/ {
      name = $1; for (i = 1; i <= NF; i++) if ($(i+1) == "ops/sec") ops = $i
      print name, s, r, ops }' "$f"
done >"$out/all"
awk '
  function median(arr, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
      if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  function human(x) {
    if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
    if (x >= 1e3) return sprintf("%.1fK", x / 1e3)
    return sprintf("%.0f", x)
  }
  { ops[$1, $2, $3] = $4; names[$1] = 1; if (!($1 in first)) { first[$1] = NR; order[++n] = $1 } ; rs[$3] = 1 }
  END {
    for (k = 1; k <= n; k++) {
      name = order[k]; na = nb = nr = 0
      for (r in rs) {
        if ((name, "a", r) in ops) A[++na] = ops[name, "a", r]
        if ((name, "b", r) in ops) B[++nb] = ops[name, "b", r]
        if (((name, "a", r) in ops) && ((name, "b", r) in ops) && ops[name, "a", r] > 0)
          R[++nr] = ops[name, "b", r] / ops[name, "a", r]
      }
      if (nr == 0) continue
      lo = hi = R[1]; for (i = 2; i <= nr; i++) { if (R[i] < lo) lo = R[i]; if (R[i] > hi) hi = R[i] }
      printf "%s: A %s ops/s, B %s ops/s, B/A %.2fx (%d rounds: %.2f-%.2f)\n",
        name, human(median(A, na)), human(median(B, nb)), median(R, nr), nr, lo, hi
    }
  }' "$out/all"
