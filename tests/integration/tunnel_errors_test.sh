#!/usr/bin/env bash
# Integration test of the failure cases a script must be able to act on: wrong server fingerprint
# (exit 3), a target not on the allow list (clear log line), server down at start (the client keeps
# trying and connects once it is up), and a server killed and restarted (its sessions are gone: the
# client gets the stateless reset, says so, and starts a new session; with --exit-on-session-loss it
# exits 4). Usage: tunnel_errors_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${keep:-0} == 1 ]]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { keep=1; echo "FAIL: $*"; for log in "$work"/*.log; do echo "--- $log"; cat "$log"; done; exit 1; }
free_port() {
  local port=$((10000 + ($$ * 11 + $1 * 173) % 22000))
  while ss -Htan "( sport = :$port or dport = :$port )" | grep -q .; do port=$((port + 1)); done
  echo $port
}
wait_for() {  # wait_for FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
server_port=$(free_port 1)
local_port=$(free_port 2)
target_port=$(free_port 3)
other_port=$(free_port 4)

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
other=$("$tether" keygen --out "$work/other" | awk '/^fingerprint/ {print $2}')
start_server() {
  "$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 \
    >>"$work/server.log" 2>&1 &
  disown $! 2>/dev/null || true
  server_pid=$!
  pids+=($server_pid)
}
socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat &
pids+=($!)

# 1. Server down at start: the client keeps trying and establishes once the server is up.
"$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" --known-servers "$work/known" \
  -L $local_port:127.0.0.1:$target_port -L $((local_port + 1)):127.0.0.1:$other_port \
  --heartbeat-interval 500 >"$work/client.log" 2>&1 &
client_pid=$!
pids+=($client_pid)
wait_for "$work/client.log" "cannot connect" 5 || fail "client did not report the server down"
start_server
wait_for "$work/client.log" "established" 10 || fail "client did not establish once the server was up"
echo "ok: server down at start, then established"

# 2. Traffic flows (echo), and a target not on the allow list is refused with a clear line.
reply=$(printf 'ping\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == ping ]] || fail "echo through the tunnel returned '$reply'"
printf 'x\n' | socat -t 2 - TCP:127.0.0.1:$((local_port + 1)) >/dev/null 2>&1 || true
wait_for "$work/client.log" "not allowed" 5 || fail "no 'not allowed' line for a target off the allow list"
echo "ok: echo through -L; target off the allow list refused"

# 3. Server killed and restarted: the session is gone; the client learns it from the stateless reset,
#    says so, and starts a new session (by default), through which traffic flows again.
kill -KILL $server_pid
start_server
wait_for "$work/client.log" "unknown-session" 10 || fail "client did not report unknown-session"
wait_for "$work/client.log" "starting a new session" 5 || fail "client did not start a new session"
for _ in $(seq 100); do [[ $(grep -c "established" "$work/client.log") -ge 2 ]] && break; sleep 0.1; done
[[ $(grep -c "established" "$work/client.log") -ge 2 ]] || fail "no second session established"
reply=$(printf 'again\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == again ]] || fail "echo through the new session returned '$reply'"
echo "ok: server restart -> stateless reset reported -> new session -> traffic flows"

# 3b. The same with --exit-on-session-loss: exit status 4, for scripts and supervisors.
kill -KILL $client_pid
"$tether" client --server 127.0.0.1:$server_port --known-servers "$work/known" --exit-on-session-loss \
  -L $((local_port + 3)):127.0.0.1:$target_port --heartbeat-interval 500 >"$work/client2.log" 2>&1 &
client_pid=$!
pids+=($client_pid)
wait_for "$work/client2.log" "established" 10 || fail "second client (known server, no --fingerprint) did not establish"
kill -KILL $server_pid
start_server
set +e
for _ in $(seq 200); do kill -0 $client_pid 2>/dev/null || break; sleep 0.1; done
wait $client_pid
status=$?
set -e
[[ $status == 4 ]] || fail "client exit status $status after the server restart, expected 4"
grep -q "unknown-session" "$work/client2.log" || fail "client did not report unknown-session"
echo "ok: --exit-on-session-loss -> exit 4 (unknown-session); known_servers pin reused without --fingerprint"

# 4. Wrong fingerprint: a clear error and exit 3.
set +e
timeout 20 "$tether" client --server 127.0.0.1:$server_port --fingerprint "$other" --known-servers "$work/known2" \
  -L $((local_port + 2)):127.0.0.1:$target_port >"$work/wrong.log" 2>&1
status=$?
set -e
[[ $status == 3 ]] || fail "wrong fingerprint: exit status $status, expected 3"
grep -q "does not match" "$work/wrong.log" || fail "wrong fingerprint: no clear message"
echo "ok: wrong fingerprint -> exit 3: $(grep -o 'server certificate.*' "$work/wrong.log" | head -1)"
