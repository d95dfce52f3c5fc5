#!/usr/bin/env bash
# segkv's part of `make bench` (called by db_bench_wal/bench_suite.sh):
#
#   segkv_bench.sh SEGKV_SERVER RECOVERY_BENCH RESULTS_TSV RECOVERY_TXT
#
# redis-benchmark -t set,get -d 100 -q with 1 and 50 clients against
# segkv_server and against Debian's redis-server with an fsync per write
# (--appendonly yes --appendfsync always --save ''), both in temporary
# directories on the benchmark disk ($SEGWAL_BENCH_DIR, else $TMPDIR, else
# /tmp), started here on free ports and stopped after. Appends one line per run
# to RESULTS_TSV in db_bench_wal's result format
#   <server>/<test>_c<clients> TAB micros/op TAB ops/sec TAB seconds TAB MB/s
# with server "segkv", "redis_aof" or "segkv_cluster" (a 3-member cluster of
# segkv_server on 127.0.0.1, kv/README.md "Cluster mode", measured on its
# leader: set with 50 clients only, next to the single node's); rows of a
# missing server are simply absent (the summary then shows n/a). Then runs segkv_recovery_bench and
# writes its "segkv:" lines (checkpoint pause, recovery time and the log's
# share) to RECOVERY_TXT.
#
# Environment: SEGKV_BENCH_SECONDS (length of each measured run, default 2;
# a probe of 300 / 5000 requests sizes it), SEGKV_BENCH_RUNS (runs of each
# pair, interleaved, default 3: the disk's fsync latency here drifts several-
# fold within minutes, so one run of each is not a fair comparison).
set -uo pipefail
SERVER=$1
RECOVERY=$2
TSV=$3
RECOVERY_TXT=$4
SECONDS_EACH=${SEGKV_BENCH_SECONDS:-2}
RUNS=${SEGKV_BENCH_RUNS:-3}
BASE="${SEGWAL_BENCH_DIR:-${TMPDIR:-/tmp}}"
WORK=$(mktemp -d "$BASE/segkv_bench.XXXXXX")
SEGKV_PID=""
REDIS_PID=""
CLUSTER_PIDS=()
cleanup() {
  [ -n "$SEGKV_PID" ] && kill "$SEGKV_PID" 2>/dev/null && wait "$SEGKV_PID" 2>/dev/null
  for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v redis-benchmark >/dev/null; then
  echo "segkv_bench: redis-benchmark not found (install redis-tools: tools/install_deps.sh); no segkv rows"
  exit 0
fi

# wait_up PORT: until PING answers (10 s).
wait_up() {
  local i
  for i in $(seq 1 100); do
    redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

SEGKV_PORT=""
"$SERVER" --dir="$WORK/segkv" --port=0 2>"$WORK/segkv.log" &
SEGKV_PID=$!
for i in $(seq 1 100); do
  SEGKV_PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$WORK/segkv.log")
  [ -n "$SEGKV_PORT" ] && break
  sleep 0.1
done
if [ -z "$SEGKV_PORT" ] || ! wait_up "$SEGKV_PORT"; then
  echo "segkv_bench: segkv_server did not start: $(cat "$WORK/segkv.log")"
  SEGKV_PORT=""
fi

REDIS_PORT=""
if command -v redis-server >/dev/null; then
  mkdir -p "$WORK/redis"
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    redis-cli -p "$port" PING >/dev/null 2>&1 && continue  # taken
    redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis" \
      --appendonly yes --appendfsync always --save '' --daemonize no \
      --logfile "$WORK/redis.log" &
    REDIS_PID=$!
    if wait_up "$port"; then
      REDIS_PORT=$port
      break
    fi
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=""
  done
  [ -n "$REDIS_PORT" ] || echo "segkv_bench: redis-server did not start: $(tail -n 3 "$WORK/redis.log" 2>/dev/null)"
else
  echo "segkv_bench: redis-server not found (install redis-server: tools/install_deps.sh); no Redis AOF rows"
fi

# The 3-member cluster: free ports from the kernel, then the leader's port.
CLUSTER_PORT=""
if ports=$(python3 -c '
import socket
s = [socket.socket() for _ in range(6)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' 2>/dev/null); then
  read -r -a P <<<"$ports"
  peers="1:127.0.0.1:${P[3]}:${P[0]},2:127.0.0.1:${P[4]}:${P[1]},3:127.0.0.1:${P[5]}:${P[2]}"
  for i in 0 1 2; do
    "$SERVER" --dir="$WORK/cluster$i" --port="${P[$i]}" --raft_id=$((i + 1)) \
      --raft_addr="127.0.0.1:${P[$((i + 3))]}" --raft_peers="$peers" 2>"$WORK/cluster$i.log" &
    CLUSTER_PIDS+=($!)
  done
  for t in $(seq 1 300); do
    for i in 0 1 2; do
      if [ "$(redis-cli -p "${P[$i]}" ROLE 2>/dev/null | head -n1)" == "master" ] &&
         [ "$(redis-cli -p "${P[$i]}" SET probe 1 2>/dev/null)" == "OK" ]; then
        CLUSTER_PORT=${P[$i]}
      fi
    done
    [ -n "$CLUSTER_PORT" ] && break
    sleep 0.1
  done
  [ -n "$CLUSTER_PORT" ] || echo "segkv_bench: the 3-member cluster elected no leader: $(tail -n 2 "$WORK"/cluster*.log)"
fi

# rps PORT TEST CLIENTS N: requests per second of one redis-benchmark run.
rps() {
  redis-benchmark -p "$1" -t "$2" -d 100 -c "$3" -n "$4" -q 2>&1 | tr '\r' '\n' |
    sed -n 's/^ *[A-Z]*: \([0-9.]*\) requests per second.*/\1/p' | tail -n1
}

# run NAME PORT TEST CLIENTS N: a short probe sizes the run to about
# SEGKV_BENCH_SECONDS (fsync latency here varies several-fold with the other
# load on the disk), then one measured run, one result line.
run() {
  local name=$1 port=$2 test=$3 clients=$4 probe=$5 ops n
  n=${SIZED[$name/$test/$clients]:-}
  if [ -z "$n" ]; then
    ops=$(rps "$port" "$test" "$clients" "$probe")
    if [ -z "$ops" ]; then
      echo "  $name ${test}_c$clients: failed"
      return 0
    fi
    n=$(awk -v o="$ops" -v s="$SECONDS_EACH" -v p="$probe" 'BEGIN {
      n = int(o * s); if (n < p) n = p; if (n > 5000000) n = 5000000; print n }')
    SIZED[$name/$test/$clients]=$n
  fi
  ops=$(rps "$port" "$test" "$clients" "$n")
  if [ -z "$ops" ]; then
    echo "  $name ${test}_c$clients: failed"
    return 0
  fi
  printf '  %-10s %-8s %10.1f requests/s (%d requests)\n' "$name" "${test}_c$clients" "$ops" "$n"
  awk -v label="$name/${test}_c$clients" -v ops="$ops" -v n="$n" 'BEGIN {
    printf "%s\t%.3f\t%.1f\t%.3f\t%.2f\n", label, 1e6 / ops, ops, n / ops, ops * 100 / 1048576 }' >>"$TSV"
}

echo "segkv_bench: redis-benchmark -d 100 against segkv_server (port ${SEGKV_PORT:-none}), redis-server AOF always (port ${REDIS_PORT:-none}) and a 3-member segkv cluster's leader (port ${CLUSTER_PORT:-none}) in $WORK"
# Each pair RUNS times, interleaved: the summary then takes the median of the
# ratios of neighbouring runs, as it does for db_bench_wal.
declare -A SIZED
for spec in "set 1 300" "get 1 300" "set 50 5000" "get 50 5000"; do
  read -r test clients n <<<"$spec"
  for ((r = 0; r < RUNS; r++)); do
    [ -n "$SEGKV_PORT" ] && run segkv "$SEGKV_PORT" "$test" "$clients" "$n"
    [ -n "$REDIS_PORT" ] && run redis_aof "$REDIS_PORT" "$test" "$clients" "$n"
    [ -n "$CLUSTER_PORT" ] && [ "$test/$clients" == "set/50" ] &&
      run segkv_cluster "$CLUSTER_PORT" "$test" "$clients" "$n"
  done
done
if [ ${#CLUSTER_PIDS[@]} -gt 0 ]; then
  [ -n "$CLUSTER_PORT" ] && redis-cli -p "$CLUSTER_PORT" INFO replication | tr -d '\r' |
    grep -E '^raft_(term|commit_index)|^fsm_snapshots_taken' | tr '\n' ' ' | sed 's/^/  segkv cluster leader: /' && echo
  for p in "${CLUSTER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  CLUSTER_PIDS=()
fi
if [ -n "$SEGKV_PORT" ]; then
  redis-cli -p "$SEGKV_PORT" INFO segwal | tr -d '\r' | grep -E '^wal_(syncs|records_per_sync_avg|sync_latency_micros_avg):' | tr '\n' ' ' | sed 's/^/  segkv WAL: /'
  echo
  redis-cli -p "$SEGKV_PORT" SHUTDOWN >/dev/null 2>&1
  wait "$SEGKV_PID" 2>/dev/null
  SEGKV_PID=""
fi
if [ -n "$REDIS_PORT" ]; then
  redis-cli -p "$REDIS_PORT" SHUTDOWN NOSAVE >/dev/null 2>&1
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=""
fi

echo "segkv_bench: segkv_recovery_bench (1M keys, checkpoint at half)"
if TMPDIR="$BASE" "$RECOVERY" --keys=1000000 >"$RECOVERY_TXT" 2>&1; then
  cat "$RECOVERY_TXT"
else
  echo "segkv recovery: failed: $(tail -n 1 "$RECOVERY_TXT")" | tee "$RECOVERY_TXT"
fi
