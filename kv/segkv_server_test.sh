#!/usr/bin/env bash
# End-to-end test of segkv_server with Debian's redis-tools (redis-cli,
# redis-benchmark) as the clients:
#   - bad flags: one line on stderr, exit 2;
#   - every command, its errors, inline and pipelined input, redis-benchmark;
#   - a malformed-RESP client is answered "-ERR Protocol error" and dropped
#     while another client keeps working;
#   - SHUTDOWN and SIGTERM exit 0 and keep the data;
#   - SIGKILL in the middle of a pipelined SET load (segkv_load_client records
#     every acknowledged SET): after a restart every acknowledged key holds its
#     value. Twice: once with frequent background checkpoints.
set -uo pipefail
# (No `echo | grep -q` below: with pipefail, grep's early exit fails echo.)

SERVER=kv/segkv_server
CLIENT=kv/segkv_load_client
TMP="${TEST_TMPDIR:-$(mktemp -d)}/segkv_e2e"
rm -rf "$TMP"
mkdir -p "$TMP"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (tools/install_deps.sh installs redis-tools)" >&2; exit 1; }
done

SERVER_PID=""
PORT=""
# start_server DIR [flags...]: starts the server on a free port, waits for it.
start_server() {
  local dir=$1
  shift
  "$SERVER" --dir="$dir" --port=0 "$@" 2>>"$TMP/server.log" &
  SERVER_PID=$!
  PORT=""
  local i
  for i in $(seq 1 600); do
    PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$TMP/server.log" | tail -n1)
    if [ -n "$PORT" ] && redis-cli -p "$PORT" PING >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "server did not start; log:" >&2
  cat "$TMP/server.log" >&2
  exit 1
}
# A new log per server start, so the port read is this server's.
new_log() { : >"$TMP/server.log"; }
cli() { redis-cli -p "$PORT" "$@"; }
# expect "description" "expected output" command...
expect() {
  local what=$1 want=$2
  shift 2
  local got
  got=$("$@" 2>&1)
  [ "$got" == "$want" ] || fail "$what: expected [$want], got [$got]"
}

# ---- Bad flags.
for flags in "--bogus=1" "--port=abc" "--compression=zstd" "" "--dir"; do
  # shellcheck disable=SC2086
  "$SERVER" $flags >"$TMP/out" 2>"$TMP/err"
  rc=$?
  [ "$rc" -eq 2 ] || fail "flags [$flags]: exit $rc, expected 2"
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "flags [$flags]: stderr is not one line: $(cat "$TMP/err")"
done

# ---- Commands.
new_log
start_server "$TMP/db1"
expect "PING" "PONG" cli PING
expect "ping (lower case)" "PONG" cli ping
expect "PING msg" "hello" cli PING hello
expect "ECHO" "a b" cli ECHO "a b"
expect "SET" "OK" cli SET k1 v1
expect "GET" "v1" cli GET k1
expect "GET missing" "" cli GET nope
expect "SET overwrite" "OK" cli set k1 v2
expect "GET overwritten" "v2" cli GeT k1
expect "MSET" "OK" cli MSET a 1 b 2 c 3
expect "MGET" "$(printf '1\n2\n\n3')" cli MGET a b zz c
expect "EXISTS" "2" cli EXISTS a b zz
expect "INCR" "2" cli INCR a
expect "INCRBY" "12" cli INCRBY a 10
expect "INCRBY negative" "-88" cli INCRBY a -100
expect "INCR new key" "1" cli INCR counter
expect "INCR non-integer" "ERR value is not an integer or out of range" cli INCR k1
expect "INCRBY bad delta" "ERR value is not an integer or out of range" cli INCRBY a x
expect "INCRBY overflow" "ERR increment or decrement would overflow" cli INCRBY counter 9223372036854775807
expect "DBSIZE" "5" cli DBSIZE
expect "KEYS" "$(printf 'a\nb\nc')" cli KEYS '[a-c]'
expect "KEYS *" "5" sh -c "redis-cli -p $PORT KEYS '*' | wc -l"
expect "DEL" "2" cli DEL a b nope
expect "EXISTS after DEL" "0" cli EXISTS a b
expect "SAVE" "OK" cli SAVE
expect "BGSAVE" "Background saving started" cli BGSAVE
expect "wrong arity" "ERR wrong number of arguments for 'get' command" cli GET
expect "wrong arity mset" "ERR wrong number of arguments for 'mset' command" cli MSET a 1 b
expect "unknown command" "ERR unknown command 'FOO', with args beginning with: 'x' 'y' " cli FOO x y
expect "SET option" "ERR SET option 'EX' is not supported by segkv (plain SET only)" cli SET k v EX 10
expect "COMMAND COUNT" "21" cli COMMAND COUNT
expect "COMMAND INFO get" "get" sh -c "redis-cli -p $PORT COMMAND INFO get | head -n1"
cli COMMAND DOCS >"$TMP/docs" 2>&1 || fail "COMMAND DOCS failed"
grep -q '^summary$' "$TMP/docs" || fail "COMMAND DOCS has no summary"
cli COMMAND >/dev/null 2>&1 || fail "COMMAND failed"
expect "CONFIG GET appendonly" "$(printf 'appendonly\nyes')" cli CONFIG GET appendonly
cli INFO >"$TMP/info"
for want in '# Server' '# Persistence' '# Segwal' 'redis_version:' 'wal_syncs:' \
    'durable_lsn:' 'checkpoints:' 'db0:keys=3'; do
  grep -q "^$want" "$TMP/info" || fail "INFO has no '$want' line"
done
grep -q $'\r$' "$TMP/info" || fail "INFO lines do not end in CRLF"
expect "INFO section" "# Segwal" sh -c "redis-cli -p $PORT INFO segwal | head -n1 | tr -d '\r'"
# Inline commands and pipelining over a raw socket (bash /dev/tcp).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'PING\r\nSET inline "a b"\r\nGET inline\r\n*2\r\n$3\r\nGET\r\n$6\r\ninline\r\n' >&3
replies=""
for i in 1 2 3 4 5 6; do
  IFS= read -r -t 10 line <&3 || break
  replies+="${line%$'\r'}|"
done
exec 3>&-
[ "$replies" == '+PONG|+OK|$3|a b|$3|a b|' ] || fail "inline + pipelined: got [$replies]"
# redis-cli --pipe: 1000 SETs then a GET.
for i in $(seq 1 1000); do printf 'SET pipe%d %d\r\n' "$i" "$i"; done >"$TMP/pipe.txt"
out=$(redis-cli -p "$PORT" --pipe <"$TMP/pipe.txt" 2>&1)
grep -q 'errors: 0, replies: 1000' <<<"$out" || fail "--pipe: $out"
expect "after --pipe" "777" cli GET pipe777
# A malformed client is dropped; another client keeps working meanwhile.
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf '*1\r\n$-5\r\n' >&4
IFS= read -r -t 10 line <&4
[ "${line%$'\r'}" == "-ERR Protocol error: invalid bulk length" ] || fail "protocol error reply: [$line]"
if IFS= read -r -t 10 line <&4; then fail "malformed client not disconnected: read [$line]"; fi
exec 4>&-
printf 'PING\r\n' >&5
IFS= read -r -t 10 line <&5
[ "${line%$'\r'}" == "+PONG" ] || fail "other client after a protocol error: [$line]"
exec 5>&-
printf '*99999999\r\n' | timeout 10 redis-cli -p "$PORT" --pipe >/dev/null 2>&1  # oversized
expect "server alive after oversized multibulk" "PONG" cli PING
# redis-benchmark, pipelined.
out=$(redis-benchmark -p "$PORT" -t set,get -n 2000 -P 16 -q 2>&1)
grep -q 'SET: [0-9.]* requests per second' <<<"$out" || fail "redis-benchmark SET: $out"
grep -q 'GET: [0-9.]* requests per second' <<<"$out" || fail "redis-benchmark GET: $out"
grep -qiE 'error|warning' <<<"$out" && fail "redis-benchmark complained: $out"
expect "FLUSHALL" "OK" cli FLUSHALL
expect "DBSIZE after FLUSHALL" "0" cli DBSIZE
expect "SET before shutdown" "OK" cli SET survives yes
# SHUTDOWN: clean exit 0, data kept.
cli SHUTDOWN >/dev/null 2>&1
wait "$SERVER_PID"
rc=$?
[ "$rc" -eq 0 ] || fail "SHUTDOWN: exit $rc"

# ---- SIGTERM after a clean restart.
new_log
start_server "$TMP/db1"
expect "value after SHUTDOWN + restart" "yes" cli GET survives
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"

# ---- SIGKILL in the middle of a load.
crash_round() {
  local name=$1
  shift
  new_log
  start_server "$TMP/$name" "$@"
  "$CLIENT" --port="$PORT" --mode=load --window=32 --prefix="$name:" \
    --acked_file="$TMP/$name.acked" >"$TMP/$name.load" 2>&1 &
  local client=$!
  # Kill once a few hundred writes were acknowledged (or after 30 s).
  local i
  for i in $(seq 1 300); do
    [ -f "$TMP/$name.acked" ] && [ "$(wc -l <"$TMP/$name.acked")" -ge 300 ] && break
    sleep 0.1
  done
  sleep 0.5
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
  wait "$client"
  local acked
  acked=$(wc -l <"$TMP/$name.acked")
  [ "$acked" -gt 0 ] || fail "$name: no write was acknowledged before the kill"
  new_log
  start_server "$TMP/$name" "$@"
  out=$("$CLIENT" --port="$PORT" --mode=verify --prefix="$name:" --acked_file="$TMP/$name.acked" 2>&1)
  local rc=$?
  echo "$name: $(cat "$TMP/$name.load"); $out"
  [ "$rc" -eq 0 ] || fail "$name: acknowledged writes lost: $out"
  cli SHUTDOWN >/dev/null 2>&1
  wait "$SERVER_PID"
}
crash_round crash_plain
crash_round crash_checkpoints --checkpoint_every_mb=1 --segment_size_mb=1

if [ "$failures" -gt 0 ]; then
  echo "server log:" >&2
  cat "$TMP/server.log" >&2
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
