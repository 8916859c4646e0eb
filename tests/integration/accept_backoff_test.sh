#!/usr/bin/env bash
# Integration test: at the descriptor limit the accept loops pause instead of spinning. A tether
# server and a client (-L) run with RLIMIT_NOFILE 64; 150 connections to each of their listening
# ports exhaust it. Over the following 3 s each process logs a bounded number of "cannot accept"
# lines (one per second, with a count) and uses little CPU (not a benchmark: a bound far above a
# paused loop and far below a spinning one), and after the connections close both work again.
# Usage: accept_backoff_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v prlimit >/dev/null || { echo "SKIP: prlimit missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
local_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn prlimit --nofile=64:64 "$tether" server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_port --auth none >"$work/server.log" 2>&1
server_pid=$spawned
wait_for 10 listening $server_port || fail "server not listening"
spawn prlimit --nofile=64:64 "$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" -L $local_port:127.0.0.1:$target_port >"$work/client.log" 2>&1
client_pid=$spawned
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Holds 150 connections to each port for 5 s, then closes them.
python3 - "$server_port" "$local_port" >"$work/holder.log" 2>&1 <<'PY' &
import socket, sys, time
held = []
for port in map(int, sys.argv[1:]):
    for _ in range(150):
        held.append(socket.create_connection(("127.0.0.1", port)))
print("holding", len(held), flush=True)
time.sleep(5)
for connection in held:
    connection.close()
PY
holder=$!
pids+=("$holder")
wait_for 10 grep -q holding "$work/holder.log" || fail "could not open the connections"
nap 0.5
server_lines_before=$(grep -c "cannot accept" "$work/server.log" || true)
client_lines_before=$(grep -c "cannot accept" "$work/client.log" || true)
server_ticks=$(cpu_ticks "$server_pid") client_ticks=$(cpu_ticks "$client_pid")
nap 3
server_ticks=$(($(cpu_ticks "$server_pid") - server_ticks))
client_ticks=$(($(cpu_ticks "$client_pid") - client_ticks))
server_lines=$(($(grep -c "cannot accept" "$work/server.log" || true) - server_lines_before))
client_lines=$(($(grep -c "cannot accept" "$work/client.log" || true) - client_lines_before))
echo "in 3 s at the limit: server $server_lines lines, $server_ticks CPU ticks; client $client_lines lines, $client_ticks CPU ticks"
((server_lines_before + client_lines_before > 0)) || fail "neither process reported the descriptor limit"
grep -q "Too many open files" "$work/server.log" || fail "the server did not name the error"
grep -q "client -L 127.0.0.1:$local_port: cannot accept" "$work/client.log" ||
  fail "the client did not report its -L listener"
((server_lines <= 5 && client_lines <= 5)) || fail "too many log lines: the accept loop is not rate-limited"
# 3 s of a spinning loop are ~300 ticks; a loop paused for 1 s between attempts costs a few.
((server_ticks < 60 && client_ticks < 60)) || fail "an accept loop spins at the descriptor limit"
wait "$holder" || true
# Once descriptors are free again, both accept: traffic flows through the tunnel.
wait_for 10 grep -q "accepting connections again" "$work/client.log" || true
reply=$(printf 'ping\n' | timeout 10 socat -t 5 - TCP:127.0.0.1:$local_port)
[[ $reply == ping ]] || fail "no echo through the tunnel after the limit: '$reply'"
echo "ok: accept loops pause and log a bounded number of lines at the descriptor limit, then recover"
