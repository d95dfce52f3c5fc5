#!/usr/bin/env bash
# ab_bench.sh runs both binaries interleaved and prints one line per
# benchmark with both medians and the ratio; a failing binary fails it with
# the binary's own words. No timing is asserted.
set -euo pipefail
dir="${TEST_SRCDIR}/${TEST_WORKSPACE}/db_bench_wal"
ab="$dir/ab_bench.sh"
bin="$dir/db_bench_wal"
export TMPDIR="${TEST_TMPDIR}"
out=$("$ab" "$bin" "$bin" 2 'fillseq[num=2000],rawwrite[num=2000]')
echo "$out"
for name in 'fillseq\[num=2000\]' 'rawwrite\[num=2000\]'; do
  echo "$out" | grep -Eq "^${name}: A [0-9.]+[KM]? ops/s, B [0-9.]+[KM]? ops/s, B/A [0-9]+\.[0-9]+x \(2 rounds: [0-9.]+-[0-9.]+\)$" ||
    { echo "FAIL: no result line for $name"; exit 1; }
done
[ "$(echo "$out" | wc -l)" -eq 2 ] || { echo "FAIL: expected 2 lines"; exit 1; }
# A bad benchmark name: non-zero exit, naming the binary.
if bad=$("$ab" "$bin" "$bin" 1 'nosuchbench' 2>&1); then
  echo "FAIL: a failing binary passed"; exit 1
fi
echo "$bad" | grep -q "ab_bench: .*db_bench_wal failed" || { echo "FAIL: $bad"; exit 1; }
echo PASS
