#!/usr/bin/env bash
# segkv's cluster mode end to end (kv/README.md, "Cluster mode"): three
# segkv_server processes on 127.0.0.1 form a raft cluster (segwal as raft's
# log). segkv_load_client --mode=cluster_load writes and records every
# acknowledged SET (following -MOVED, retrying -TRYAGAIN and unanswered ones);
# the leader is SIGKILLed in the middle of the load; a new leader must be
# elected and writing must go on; the old leader restarts from its directory
# and catches up. At the end every acknowledged key reads back with its value
# from the leader (linearizable MGET), and all three members' states are equal
# (DEBUG DIGEST: digest, key count, last applied index).
#
# Before the kill, both followers are stopped for a second: no SET may be
# acknowledged while no majority can commit it.
#
# Also: a bad --raft_peers is one line naming the flag and exit 2; followers
# answer -MOVED naming the leader (and redis-cli -c follows it); ROLE and
# INFO replication; a raft snapshot threshold small enough that snapshots
# (and log truncation behind them) happen during the load.
set -uo pipefail

SERVER=kv/segkv_server
CLIENT=kv/segkv_load_client
TMP="${TEST_TMPDIR:-$(mktemp -d)}/segkv_cluster"
rm -rf "$TMP"
mkdir -p "$TMP"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
command -v redis-cli >/dev/null || { echo "FAIL: redis-cli not found (tools/install_deps.sh installs redis-tools)" >&2; exit 1; }

# Free TCP ports on 127.0.0.1 (the kernel's picks, released before use).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}
read -r -a P <<<"$(free_ports 6)"
CPORT=("" "${P[0]}" "${P[1]}" "${P[2]}")
RPORT=("" "${P[3]}" "${P[4]}" "${P[5]}")
PEERS="1:127.0.0.1:${RPORT[1]}:${CPORT[1]},2:127.0.0.1:${RPORT[2]}:${CPORT[2]},3:127.0.0.1:${RPORT[3]}:${CPORT[3]}"
PIDS=("" "" "" "")
FLAGS=(--raft_snapshot_threshold=512 --raft_snapshot_trailing=128 --segment_size_mb=1)

cleanup() {
  for i in 1 2 3; do
    [ -n "${PIDS[$i]}" ] && kill -KILL "${PIDS[$i]}" 2>/dev/null
  done
  [ -n "${LOADER:-}" ] && kill -KILL "$LOADER" 2>/dev/null
}
trap cleanup EXIT

start_node() {
  local i=$1
  "$SERVER" --dir="$TMP/n$i" --port="${CPORT[$i]}" --raft_id="$i" \
    --raft_addr="127.0.0.1:${RPORT[$i]}" --raft_peers="$PEERS" "${FLAGS[@]}" \
    2>>"$TMP/n$i.log" &
  PIDS[$i]=$!
}
# role PORT: master, slave, or "" if the member does not answer.
role() { redis-cli -p "$1" ROLE 2>/dev/null | head -n1; }
# wait_leader [EXCEPT]: prints the id of the member that is leader (and
# serving: a PING is not enough, a write must go through), within 60 s.
wait_leader() {
  local except=${1:-0} t i
  for t in $(seq 1 600); do
    for i in 1 2 3; do
      [ "$i" -eq "$except" ] && continue
      if [ "$(role "${CPORT[$i]}")" == "master" ] &&
         [ "$(redis-cli -p "${CPORT[$i]}" SET leader:probe "$i" 2>/dev/null)" == "OK" ]; then
        echo "$i"
        return 0
      fi
    done
    sleep 0.1
  done
  return 1
}
acked() { [ -f "$TMP/acked" ] && wc -l <"$TMP/acked" || echo 0; }
# wait_acked N: until at least N SETs are acknowledged (at most 60 s).
wait_acked() {
  local t
  for t in $(seq 1 600); do
    [ "$(acked)" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# ---- A bad --raft_peers: one line naming the flag, exit 2, no crash.
out=$("$SERVER" --dir="$TMP/bad" --port="${CPORT[1]}" --raft_id=1 --raft_peers="1:127.0.0.1:x:1" 2>&1)
rc=$?
[ "$rc" -eq 2 ] || fail "bad --raft_peers: exit $rc, want 2"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "bad --raft_peers: not one line: $out"
grep -q -- "--raft_peers: entry 1 '1:127.0.0.1:x:1': RAFTPORT 'x'" <<<"$out" ||
  fail "bad --raft_peers: message does not name the flag and entry: $out"
out=$("$SERVER" --dir="$TMP/bad" --port="${CPORT[1]}" --raft_id=4 --raft_peers="$PEERS" 2>&1)
[ $? -eq 2 ] && grep -q -- "--raft_peers: does not list --raft_id 4" <<<"$out" ||
  fail "--raft_id not among the peers: $out"

# ---- Start the three members; a leader is elected.
for i in 1 2 3; do start_node "$i"; done
leader=$(wait_leader) || { fail "no leader elected"; cat "$TMP"/n*.log >&2; exit 1; }
echo "leader: member $leader"
for i in 1 2 3; do
  grep -q "bootstrapped the configuration" "$TMP/n$i.log" || fail "member $i did not bootstrap"
done
follower=$(( leader % 3 + 1 ))
got=$(redis-cli -p "${CPORT[$follower]}" SET k v 2>&1)
[ "$got" == "MOVED 0 127.0.0.1:${CPORT[$leader]}" ] || fail "follower SET: got [$got]"
got=$(redis-cli -p "${CPORT[$follower]}" GET k 2>&1)
[ "$got" == "MOVED 0 127.0.0.1:${CPORT[$leader]}" ] || fail "follower GET: got [$got]"
got=$(redis-cli -c -p "${CPORT[$follower]}" SET k v 2>&1)
[ "$got" == "OK" ] || fail "redis-cli -c SET through a follower: got [$got]"
got=$(redis-cli -c -p "${CPORT[$follower]}" GET k 2>&1)
[ "$got" == "v" ] || fail "redis-cli -c GET through a follower: got [$got]"
[ "$(role "${CPORT[$follower]}")" == "slave" ] || fail "follower ROLE"
info=$(redis-cli -p "${CPORT[$leader]}" INFO replication | tr -d '\r')
grep -q "^raft_state:leader$" <<<"$info" || fail "INFO replication on the leader: $info"
grep -q "^raft_leader_id:$leader$" <<<"$info" || fail "INFO replication leader id: $info"
# The log's section is the single node's (kv/commands.cc, SegwalInfoSection).
info=$(redis-cli -p "${CPORT[$leader]}" INFO segwal | tr -d '\r')
grep -q "^wal_poisoned:no$" <<<"$info" || fail "INFO segwal on the leader: $info"
grep -q "^wal_sync_latency_micros_p99:[0-9]" <<<"$info" || fail "INFO segwal sync latency: $info"
grep -q "^wal_syncs:[1-9]" <<<"$info" || fail "INFO segwal syncs: $info"

# ---- Load; SIGKILL the leader in the middle; go on; restart it.
"$CLIENT" --mode=cluster_load --ports="${CPORT[1]},${CPORT[2]},${CPORT[3]}" --window=16 \
  --prefix="c:" --acked_file="$TMP/acked" --stop_file="$TMP/stop" >"$TMP/load.out" 2>&1 &
LOADER=$!
wait_acked 1000 || fail "load: fewer than 1000 acknowledged SETs"
# No acknowledgment without a majority: with both followers stopped
# (SIGSTOP) the leader cannot commit, so once what was committed before has
# been answered (0.5 s), no SET may be acknowledged (0.5 s more). A server
# that answered at raft_apply, before commit, fails here.
for i in 1 2 3; do [ "$i" -ne "$leader" ] && kill -STOP "${PIDS[$i]}"; done
sleep 0.5
paused_from=$(acked)
sleep 0.5
paused_to=$(acked)
for i in 1 2 3; do [ "$i" -ne "$leader" ] && kill -CONT "${PIDS[$i]}"; done
echo "followers stopped: $paused_from -> $paused_to acknowledged SETs"
[ "$paused_to" -eq "$paused_from" ] ||
  fail "$(( paused_to - paused_from )) SETs acknowledged while no majority could commit them"
wait_acked $(( $(acked) + 500 )) || fail "load did not go on after the followers resumed"
# The leader may have changed meanwhile (libraft steps down without a quorum).
leader=$(wait_leader) || fail "no leader before the kill"
wait_acked 1500 || fail "load: fewer than 1500 acknowledged SETs before the kill"
before_kill=$(acked)
kill -KILL "${PIDS[$leader]}"
wait "${PIDS[$leader]}" 2>/dev/null
PIDS[$leader]=""
killed=$leader
echo "SIGKILLed leader $killed after $before_kill acknowledged SETs"
leader=$(wait_leader "$killed") || fail "no new leader after the kill"
echo "new leader: member $leader"
[ "$leader" != "$killed" ] || fail "the killed member is leader"
wait_acked $(( before_kill + 1500 )) || fail "load did not go on after the kill"
start_node "$killed"
recovered=0
for t in $(seq 1 300); do
  grep -q "recovering from its directory" "$TMP/n$killed.log" && { recovered=1; break; }
  sleep 0.1
done
[ "$recovered" -eq 1 ] || fail "the restarted member did not recover from its directory"
wait_acked $(( $(acked) + 1000 )) || fail "load did not go on after the restart"
touch "$TMP/stop"
wait "$LOADER"
LOADER=""
cat "$TMP/load.out"
grep -q " 0 never acknowledged" "$TMP/load.out" || fail "some SETs were never acknowledged"

# ---- Every acknowledged key from the leader; equal states on all three.
leader=$(wait_leader) || fail "no leader at the end"
total=$(sort -u "$TMP/acked" | wc -l)
out=$("$CLIENT" --port="${CPORT[$leader]}" --mode=verify --prefix="c:" --acked_file="$TMP/acked" 2>&1)
rc=$?
echo "verify on leader $leader: $out"
lost=$(sed -n 's/.*: \([0-9]*\) missing or wrong.*/\1/p' <<<"$out" | tail -n1)
[ -n "$lost" ] || lost=$total
[ "$rc" -eq 0 ] || fail "acknowledged writes lost: $out"
equal=0
for t in $(seq 1 300); do
  d1=$(redis-cli -p "${CPORT[1]}" DEBUG DIGEST 2>&1)
  d2=$(redis-cli -p "${CPORT[2]}" DEBUG DIGEST 2>&1)
  d3=$(redis-cli -p "${CPORT[3]}" DEBUG DIGEST 2>&1)
  if [ -n "$d1" ] && [ "$d1" == "$d2" ] && [ "$d2" == "$d3" ]; then
    equal=1
    break
  fi
  sleep 0.1
done
echo "DEBUG DIGEST (digest keys last_applied): 1: $d1; 2: $d2; 3: $d3"
[ "$equal" -eq 1 ] || fail "the members' states differ"
keys=$(cut -d' ' -f2 <<<"$d1")
# c:<i> for every acknowledged i, plus k and leader:probe.
[ "$keys" == "$(( total + 2 ))" ] || fail "DBSIZE by digest: $keys keys, want $(( total + 2 ))"
info=$(redis-cli -p "${CPORT[$killed]}" INFO replication | tr -d '\r')
grep -q "^raft_state:follower$" <<<"$info" || fail "restarted member: $info"
# It was more than --raft_snapshot_threshold entries behind: its state came
# (at load or by InstallSnapshot) from a snapshot in the checkpoint encoding.
grep -q "^fsm_snapshots_restored:[1-9]" <<<"$info" ||
  fail "the restarted member restored no snapshot: $info"
info=$(redis-cli -p "${CPORT[$leader]}" INFO replication | tr -d '\r')
grep -q "^fsm_snapshots_taken:[1-9]" <<<"$info" || fail "the leader took no snapshot: $info"

# ---- SIGTERM: clean exits.
for i in 1 2 3; do kill -TERM "${PIDS[$i]}"; done
for i in 1 2 3; do
  wait "${PIDS[$i]}"
  rc=$?
  [ "$rc" -eq 0 ] || fail "member $i: exit $rc after SIGTERM"
  PIDS[$i]=""
done

# Under --config=asan/tsan: a report in any member's log (the killed one's
# exit code is not seen) fails the test.
for i in 1 2 3; do
  grep -q "Sanitizer" "$TMP/n$i.log" && fail "member $i: sanitizer report in its log"
done

# The durability summary (tools/durability_summary.sh) counts these.
echo "SEGWAL_STATS real_kills=1 records_verified=$total acked_lost=$lost"
if [ "$failures" -gt 0 ]; then
  for i in 1 2 3; do echo "--- member $i log:" >&2; tail -n 30 "$TMP/n$i.log" >&2; done
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
