#!/usr/bin/env bash
# Runs `bazel test` with the given arguments and prints one closing line that counts
# the individual test cases (from each target's test.xml):
#   tests: N passed, M failed
# Exits with bazel's exit code.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bazel test --test_summary=short "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
flags=()
for a in "$@"; do [[ "$a" == -* ]] && flags+=("$a"); done
testlogs=$(bazel info bazel-testlogs "${flags[@]}" 2>/dev/null | tail -n 1)
passed=0
failed=0
while read -r target; do
  dir="${target#//}"
  dir="${dir/://}"
  xml="$testlogs/$dir/test.xml"
  [ -f "$xml" ] || continue
  t=$(grep -o '<testsuites[^>]*' "$xml" | grep -o ' tests="[0-9]*"' | head -n1 | grep -o '[0-9]*')
  f=$(grep -o '<testsuites[^>]*' "$xml" | grep -o ' failures="[0-9]*"' | head -n1 | grep -o '[0-9]*')
  e=$(grep -o '<testsuites[^>]*' "$xml" | grep -o ' errors="[0-9]*"' | head -n1 | grep -o '[0-9]*')
  t=${t:-0}; f=${f:-0}; e=${e:-0}
  if grep -qE "^$target +(FAILED|TIMEOUT|NO STATUS)" "$log" && [ $((f + e)) -eq 0 ]; then
    f=1  # the target failed without a gtest failure (crash, sanitizer report, timeout)
  fi
  passed=$((passed + t - f - e))
  failed=$((failed + f + e))
done < <(grep -oE '^//[^ ]+ +(\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY)' "$log" | awk '{print $1}')
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "tests: ${passed} passed, ${failed} failed"
exit "$rc"
