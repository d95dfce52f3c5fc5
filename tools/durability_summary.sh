#!/usr/bin/env bash
# Prints CI's durability summary line: what the durability tests did, summed over
# the test logs of the given Bazel configurations (no argument: the default one)
# and the last fuzzing run:
#
#   durability: C crash cycles simulated, K real kills, F injected faults,
#   X fuzz executions; 0 acknowledged records lost, 0 phantom records
#
# Tests report with one line each in their test.log (stdout):
#   SEGWAL_STATS key=value key=value ...
# Keys: crash_cycles (simulated power losses: wal_crash_test, wal_stress_test),
# real_kills (crash_driver_test; kv/segkv_cluster_test: the raft leader
# SIGKILLed, with records_verified and acked_lost for its acknowledged SETs), injected_faults (wal_fault_test), bit_flips
# (bit_flip_test), real_disk_full_runs (disk_full_test), fuzz_execs and
# fuzz_crashes (fuzz/run_fuzzers.sh, from $FUZZ_OUT/stats.txt, default fuzz/out), acked_lost and
# phantom (crash_driver_test, wal_stress_test, disk_full_test: records
# acknowledged durable but missing after recovery, and records recovered that
# were never appended). "injected faults" counts injected I/O errors that fired,
# bit flips and real full-disk runs.
#
# usage: tools/durability_summary.sh [--config=asan] [--config=tsan] ...
#        (pass "" for the default configuration alongside others)
# Exits 1 if any acknowledged record was lost, any phantom appeared, or a fuzzer
# crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=("")
logs=()
for c in "${configs[@]}"; do
  if [ -n "$c" ]; then
    dir=$(bazel info bazel-testlogs "$c" 2>/dev/null | tail -n 1)
  else
    dir=$(bazel info bazel-testlogs 2>/dev/null | tail -n 1)
  fi
  [ -d "$dir" ] || continue
  while IFS= read -r f; do logs+=("$f"); done < <(find "$dir/" -name test.log)
done
fuzz_stats="${FUZZ_OUT:-fuzz/out}/stats.txt"
[ -f "$fuzz_stats" ] && logs+=("$fuzz_stats")
if [ ${#logs[@]} -eq 0 ]; then
  echo "durability: no test logs found" >&2
  exit 1
fi
cat "${logs[@]}" | awk '
  /^SEGWAL_STATS / {
    for (i = 2; i <= NF; i++) {
      n = index($i, "=");
      if (n > 0) s[substr($i, 1, n - 1)] += substr($i, n + 1);
    }
  }
  END {
    faults = s["injected_faults"] + s["bit_flips"] + s["real_disk_full_runs"];
    printf "durability details: %d crash cycles, %d real kills (%d at kill points), %d injected I/O faults fired, %d bit flips, %d real full-disk runs, %d records verified after real kills, %d fuzz executions (%d crashes), %d fuzz inputs replayed\n",
      s["crash_cycles"], s["real_kills"], s["kill_point_exits"], s["injected_faults"],
      s["bit_flips"], s["real_disk_full_runs"], s["records_verified"], s["fuzz_execs"],
      s["fuzz_crashes"], s["fuzz_inputs_replayed"];
    printf "durability: %d crash cycles simulated, %d real kills, %d injected faults, %d fuzz executions; %d acknowledged records lost, %d phantom records\n",
      s["crash_cycles"], s["real_kills"], faults, s["fuzz_execs"], s["acked_lost"], s["phantom"];
    exit (s["acked_lost"] > 0 || s["phantom"] > 0 || s["fuzz_crashes"] > 0) ? 1 : 0;
  }'
