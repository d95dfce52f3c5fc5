#!/usr/bin/env bash
# Builds (fuzz/build_fuzzers.sh) and runs every libFuzzer target for
# FUZZ_SECONDS seconds each (default 60). Each target starts from its committed
# seed corpus (fuzz/corpus/<target>) plus what earlier runs found
# ($FUZZ_OUT/corpus/<target>, kept between runs, not committed).
#
# A crash (or a FUZZ_CHECK abort) stops that target; its input is copied to
# fuzz/regressions/<target>/ — commit it with the fix, and
# //fuzz:fuzz_regression_test replays it in `make test` from then on.
#
# Prints per target the executions and coverage, then
#   SEGWAL_STATS fuzz_execs=N fuzz_crashes=M
# (also written to $FUZZ_OUT/stats.txt for tools/durability_summary.sh).
# Exits 1 if any target crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_OUT:-fuzz/out}
SECONDS_EACH=${FUZZ_SECONDS:-60}
# FUZZ_SEED fixes libFuzzer's seed (CI does, so that its gate is reproducible);
# unset, every run explores from a fresh random seed (make fuzz).
SEED_FLAG=()
[ -n "${FUZZ_SEED:-}" ] && SEED_FLAG=(-seed="$FUZZ_SEED")
fuzz/build_fuzzers.sh || exit 1

total=0
crashes=0
for t in segment_reader footer_decoder open_directory key_file recovery_verdict resp_parser; do
  rm -rf "$OUT/crashes/$t"
  mkdir -p "$OUT/corpus/$t" "$OUT/crashes/$t"
  log="$OUT/$t.log"
  max_len=4096
  [ "$t" = open_directory ] && max_len=32768
  [ "$t" = recovery_verdict ] && max_len=32768
  [ "$t" = segment_reader ] && max_len=8192
  "$OUT/${t}_fuzzer" "${SEED_FLAG[@]}" -max_total_time="$SECONDS_EACH" -max_len="$max_len" \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/crashes/$t/" \
    "$OUT/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)
  execs=${execs:-0}
  total=$((total + execs))
  if [ "$rc" -ne 0 ]; then
    crashes=$((crashes + 1))
    mkdir -p "fuzz/regressions/$t"
    for c in "$OUT/crashes/$t"/*; do
      [ -f "$c" ] && cp "$c" "fuzz/regressions/$t/"
    done
    echo "fuzz: $t CRASHED after $execs executions (exit $rc); input(s) copied to fuzz/regressions/$t/:"
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|==[0-9]+==' "$log" | head -n 20
    echo "  full log: $log"
  else
    echo "fuzz: $t: $execs executions in ${SECONDS_EACH}s ($cov)"
  fi
done
line="SEGWAL_STATS fuzz_execs=$total fuzz_crashes=$crashes"
echo "$line"
echo "$line" >"$OUT/stats.txt"
[ "$crashes" -eq 0 ]
