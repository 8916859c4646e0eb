#!/usr/bin/env bash
# Integration test: redis-server behind `tether client -L`, redis-benchmark and redis-cli through the
# tunnel while its TCP connection is (a) killed every ~300 ms with ss -K and (b) silently blackholed
# with nftables for 2.5 s, far longer than the liveness budget (at most 600 ms). Asserts: every
# redis-benchmark run ends with exit status 0 and no error (redis-benchmark 7 exits 1 at the first
# connection reset, server close or error reply), every command ran exactly once (counters and list
# lengths equal the request counts), 20,000 distinct values pushed with redis-cli --pipe read back
# byte-identical, and the client logged one resume per fault and never replaced its session.
# Needs root (ss -K, nftables). Usage: redis_faults_test.sh PATH/TO/tether
# Environment: SHOW_LOGS=1 prints the tether logs, KEEP=1 keeps the temporary directory.
set -euo pipefail
tether=$1
# shellcheck source=SCRIPTDIR/lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
lib_require_root_and_nft redis-server redis-benchmark redis-cli awk base64

redis_port=$(free_port)
spawn redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$work/redis-server.txt"
wait_port "$redis_port" 10 || fail "redis-server did not listen on $redis_port"
start_tunnel "$redis_port"
require_working_ss_kill
echo "$(elapsed) s: redis-server on $redis_port, tether server on $server_port, client -L $local_port"

direct() { timeout 20 redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
through() { timeout 20 redis-cli -h 127.0.0.1 -p "$local_port" "$@"; }

requests=0
# bench NAME REDIS-BENCHMARK-ARGS...: one redis-benchmark through the tunnel (or at $bench_port),
# bounded; run it in the background and check it afterwards with check_bench. Options must precede a
# custom command.
bench() {
  local name=$1 status=0
  shift
  timeout 60 redis-benchmark -h 127.0.0.1 -p "${bench_port:-$local_port}" --csv "$@" >"$work/$name.csv" \
    2>"$work/$name.err" || status=$?
  echo "$status" >"$work/$name.status"
}
# bench_problem NAME TESTS: sets $problem to what went wrong (empty when all is well): redis-benchmark
# 7 exits 1 at the first error (connection reset, server closed the connection, error reply) and
# prints "Error: ..." on stderr; a hang ends in timeout's 124; every test must have its CSV row.
bench_problem() {
  local status errors rows
  problem=""
  status=$(cat "$work/$1.status" 2>/dev/null || echo missing)
  errors=$(tr '\r' '\n' <"$work/$1.err" | grep -i "error\|closed\|reset\|disconnect\|abort\|refused" || true)
  rows=$(grep -c '^"[A-Z]' "$work/$1.csv" || true)
  if [[ $status == 124 ]]; then
    problem="redis-benchmark $1 hung (killed by timeout) $errors"
  elif [[ $status != 0 || -n $errors ]]; then
    problem="redis-benchmark $1: exit status $status: $errors"
  elif ((rows != $2)); then
    problem="redis-benchmark $1: $rows result rows, expected $2: $(cat "$work/$1.csv")"
  fi
}
check_bench() {  # check_bench NAME TESTS REQUESTS_PER_TEST
  bench_problem "$1" "$2"
  [[ -z $problem ]] || fail "$problem"
  requests=$((requests + $2 * $3))
  echo "  redis-benchmark $1: exit 0, no error: $(grep '^"[A-Z]' "$work/$1.csv" |
    awk -F'","' '{ gsub(/"/, "", $1); gsub(/"/, "", $2); printf "%s%s %.0f rps", sep, $1, $2; sep = ", " }')"
}

# ---- control: the check above must catch a connection reset. redis-benchmark straight at a second
# redis-server that is killed (SIGKILL) mid-run.
control_port=$(free_port)
spawn redis-server --port "$control_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile "$work/control-redis-server.txt"
control_pid=$spawned
wait_port "$control_port" 10 || fail "the control redis-server did not listen on $control_port"
bench_port=$control_port bench control -c 20 -n 10000000 -t set &
control_bench=$!
nap 0.5
kill -KILL "$control_pid"
wait "$control_pid" 2>/dev/null || true
wait "$control_bench"
bench_problem control 1
[[ -n $problem ]] || fail "control: redis-benchmark at a killed redis-server passed the check"
echo "  control: redis-server killed under redis-benchmark is caught: ${problem//$'\n'/ }"

# ---- (a) ss -K every ~300 ms
echo "$(elapsed) s: phase 1: ss -K on the tunnel's connection every ~300 ms"
start_cuts 300 90
bench mixed -c 20 -n 6000 -r 10000 -d 256 -t set,get,incr,lpush,mset &
mixed=$!
# Pipelined INCR of one key: its final value counts the commands executed, each exactly once.
bench counter -c 8 -P 16 -n 400000 INCR tether:counter &
counter=$!
wait "$mixed" "$counter"
check_bench mixed 5 6000
check_bench counter 1 400000

# 20,000 distinct 64-character values, pushed with redis-cli --pipe and read back, still under cuts.
head -c 960000 /dev/urandom | base64 -w 64 >"$work/values"  # 48 bytes a line: no padding
awk '{ printf "*3\r\n$5\r\nRPUSH\r\n$11\r\ntether:list\r\n$%d\r\n%s\r\n", length($0), $0 }' \
  "$work/values" >"$work/values.resp"
pipe_status=0
timeout 30 redis-cli -h 127.0.0.1 -p "$local_port" --pipe <"$work/values.resp" >"$work/pipe.out" 2>&1 ||
  pipe_status=$?
if ((pipe_status != 0)) || ! grep -q "errors: 0, replies: 20000" "$work/pipe.out"; then
  fail "redis-cli --pipe through the tunnel (status $pipe_status): $(tail -2 "$work/pipe.out")"
fi
through --raw LRANGE tether:list 0 -1 >"$work/values.through" ||
  fail "LRANGE through the tunnel failed: $(tail -2 "$work/values.through")"
cmp -s "$work/values" "$work/values.through" ||
  fail "LRANGE through the tunnel differs from what was pushed: $(cmp "$work/values" "$work/values.through" 2>&1)"
echo "  redis-cli --pipe: 20000 RPUSH, errors 0; LRANGE through the tunnel byte-identical"
stop_cuts
wait_session_live 10 || fail "the session did not resume after the last cut"
phase1_cuts=$(cuts)
phase1_longest=$(longest_downtime_ms 0)
echo "$(elapsed) s: phase 1 done: $phase1_cuts cuts, $(resumes) resumes"

# ---- (b) a 2.5 s blackhole while two redis-benchmarks run
echo "$(elapsed) s: phase 2: nftables blackhole of 2500 ms (liveness budget at most $budget_ms ms)"
bench blackhole-mixed -c 20 -n 12000 -r 10000 -t set,get &
mixed=$!
bench blackhole-counter -c 4 -n 12000 INCR tether:counter &
counter=$!
nap 0.3
# Both must still run when the blackhole starts (they then stall until it ends).
if ! kill -0 "$mixed" 2>/dev/null || ! kill -0 "$counter" 2>/dev/null; then
  fail "a redis-benchmark finished before the blackhole: the fault would not land mid-run"
fi
blackhole 2500
[[ -n $blackhole_detection_ms ]] || fail "the client did not notice a 2500 ms blackhole"
wait "$mixed" "$counter"
check_bench blackhole-mixed 2 12000
check_bench blackhole-counter 1 12000
wait_session_live 10 || fail "the session did not resume after the blackhole"
blackhole_downtime=$(last_downtime_ms)

# ---- every command executed exactly once, and the data is intact
check_value() {  # check_value WHAT ACTUAL EXPECTED
  [[ $2 == "$3" ]] || fail "$1 is '$2', expected $3 (commands lost or executed twice)"
}
check_value "tether:counter (direct)" "$(direct GET tether:counter)" 412000
check_value "tether:counter (through the tunnel)" "$(through GET tether:counter)" 412000
check_value "LLEN mylist (the LPUSH test)" "$(direct LLEN mylist)" 6000
check_value "the sum of counter:* (the INCR test)" "$(direct EVAL \
  "local s = 0 for _, k in ipairs(redis.call('keys', 'counter:*')) do s = s + tonumber(redis.call('get', k)) end return s" 0)" 6000
check_value "LLEN tether:list" "$(direct LLEN tether:list)" 20000
direct --raw LRANGE tether:list 0 -1 >"$work/values.direct"
cmp -s "$work/values" "$work/values.direct" || fail "tether:list in redis differs from what was pushed"
for index in 1 2 3 4 5; do
  value="check-$index-$RANDOM$RANDOM"
  check_value "SET through the tunnel" "$(through SET "tether:check:$index" "$value")" OK
  check_value "GET through the tunnel" "$(through GET "tether:check:$index")" "$value"
done
check_value "DBSIZE through the tunnel" "$(through DBSIZE)" "$(direct DBSIZE)"
echo "  exactly once: tether:counter = 412000, LLEN mylist = 6000, sum of counter:* = 6000; SET/GET ok"

# ---- the session survived every fault, one resume per fault
assert_every_fault_survived  # sets $faults
echo "redis_faults: PASS in $(elapsed) s: $(cuts) cuts (ss -K) + 1 blackhole of 2500 ms (noticed after" \
  "$blackhole_detection_ms ms: $blackhole_cause; resumed after $blackhole_downtime ms);" \
  "$(resumes) resumes logged for $faults faults, longest downtime after a cut $phase1_longest ms," \
  "$(bytes_replayed) bytes replayed; $requests redis-benchmark requests, 0 errors"
