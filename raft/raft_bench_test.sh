#!/usr/bin/env bash
# raft_bench end to end with tiny settings (two windows, one pair, 0.3 s,
# tmpfs runs on /dev/shm when it is a writable tmpfs):
# it exits 0, prints one line per run, ends with one summary line per window
# in the documented shape with positive rates and ratio, and removes its
# directory. No timing is asserted. Bad flags fail.
#
#   bazel test //raft:raft_bench_test
#   raft/raft_bench_test.sh path/to/raft_bench   # by hand
set -uo pipefail

BIN="${1:-}"
if [ -z "$BIN" ]; then
  for c in "${TEST_SRCDIR:-}/segwal/raft/raft_bench" "raft/raft_bench"; do
    if [ -x "$c" ]; then BIN="$c"; break; fi
  done
fi
[ -x "$BIN" ] || { echo "raft_bench binary not found" >&2; exit 1; }

TMP="$(mktemp -d "${TEST_TMPDIR:-/tmp}/raft_bench_test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/dir"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# tmpfs runs (raft_uv with its files on tmpfs) where a tmpfs is writable here.
CEIL=""
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
  CEIL="$(mktemp -d /dev/shm/raft_bench_test.XXXXXX)"
  trap 'rm -rf "$TMP" "$CEIL"' EXIT
fi

"$BIN" --windows=4,2 --pairs=1 --seconds=0.3 --warmup=0.1 --dir="$TMP/dir" \
  --tmpfs_dir="$CEIL" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "exit code $rc; stderr: $(cat "$TMP/err")"

# One line per run: window 4 and 2, segwal then raft_uv.
RUN_RE='^run 1/1 window [0-9]+ (segwal|raft_uv): [0-9]+ commits/s \([0-9]+ in [0-9.]+ s;'
runs="$(grep -Ec "$RUN_RE" "$TMP/out")"
[ "$runs" -eq 4 ] || fail "expected 4 run lines, got $runs"
for w in 4 2; do
  for s in segwal raft_uv; do
    grep -Eq "^run 1/1 window $w $s: [1-9][0-9]* commits/s" "$TMP/out" ||
      fail "no run line with a positive rate for window $w, $s"
  done
done

# The output ends with exactly one summary line per window, in order.
SUM_RE='^window ([0-9]+): segwal ([0-9]+) commits/s, raft_uv ([0-9]+) commits/s, ratio ([0-9]+\.[0-9]{2})x$'
tail -n 2 "$TMP/out" >"$TMP/summary"
i=0
for w in 4 2; do
  i=$((i + 1))
  line="$(sed -n "${i}p" "$TMP/summary")"
  if ! [[ "$line" =~ $SUM_RE ]]; then
    fail "summary line $i has the wrong shape: '$line'"
    continue
  fi
  [ "${BASH_REMATCH[1]}" = "$w" ] || fail "summary line $i is for window ${BASH_REMATCH[1]}, not $w"
  [ "${BASH_REMATCH[2]}" -gt 0 ] || fail "window $w: segwal rate not positive: '$line'"
  [ "${BASH_REMATCH[3]}" -gt 0 ] || fail "window $w: raft_uv rate not positive: '$line'"
  awk -v r="${BASH_REMATCH[4]}" 'BEGIN { exit !(r > 0) }' ||
    fail "window $w: ratio not positive: '$line'"
done

# tmpfs: a run per window and one line naming both windows, or none.
ceil_runs="$(grep -Ec '^run 1/1 window [0-9]+ tmpfs: [1-9][0-9]* commits/s' "$TMP/out")"
if [ -n "$CEIL" ]; then
  [ "$ceil_runs" -eq 2 ] || fail "expected 2 tmpfs runs with positive rates, got $ceil_runs"
  grep -Eq '^raft_uv on tmpfs .*: window 4 [1-9][0-9]* \([0-9.]+x raft_uv on disk\), window 2 [1-9]' \
    "$TMP/out" || fail "no tmpfs line for windows 4 and 2"
  left="$(ls -A "$CEIL")"
  [ -z "$left" ] || fail "left behind in --tmpfs_dir: $left"
else
  [ "$ceil_runs" -eq 0 ] || fail "tmpfs runs with --tmpfs_dir empty"
fi

# Its temporary directory is gone.
left="$(ls -A "$TMP/dir")"
[ -z "$left" ] || fail "left behind in --dir: $left"

# Bad flags: a non-zero exit and a message.
for bad in --windows=0 --windows=x --pairs=0 --seconds=0; do
  "$BIN" "$bad" --dir="$TMP/dir" >"$TMP/bad_out" 2>"$TMP/err"
  rc=$?
  [ $rc -ne 0 ] || fail "$bad: exit code 0"
  [ -s "$TMP/err" ] || fail "$bad: nothing on stderr"
done

if [ $failures -gt 0 ]; then
  echo "raft_bench_test: $failures failure(s); output was:" >&2
  cat "$TMP/out" >&2
  exit 1
fi
echo "raft_bench_test: ok"
