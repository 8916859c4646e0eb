#!/usr/bin/env bash
# Integration test of the one heartbeat policy at the runtime: the client proposes 400 ms x 2, the
# server is configured with 3000 ms x 4; once the session is established both sides use the
# negotiated values (the client's proposal, inside the server's bounds), and both set the kernel's
# TCP_USER_TIMEOUT of the connection from them (session::kernel_user_timeout: 400 x 2 + 400 =
# 1200 ms), not from their own configuration (the server's would give 15000 ms). Reads
# `tether status --json` on both sides (the timeout is read back from the sockets).
# Usage: heartbeat_negotiation_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" --auth none \
  --heartbeat-interval 3000 --missing-heartbeats 4 --control-socket "$work/server.sock" \
  >"$work/server.log" 2>&1
spawn "$tether" --log-format json client --server "127.0.0.1:$server_port" \
  --fingerprint "$fingerprint" --known-servers "$work/known" \
  --heartbeat-interval 400 --missing-heartbeats 2 --control-socket "$work/client.sock" \
  -L "$(free_port):127.0.0.1:9" \
  >"$work/client.log" 2>&1

# session FIELD SOCKET: FIELD of the first session `tether status --json` shows on SOCKET.
session() { "$tether" status --socket "$2" --json | jq -c ".[0].sessions[0].$1"; }
established() {
  [[ $(session state "$work/client.sock" 2>/dev/null) == '"open"' ]] &&
    [[ $(session state "$work/server.sock" 2>/dev/null) == '"open"' ]]
}
wait_for 10 established || fail "the session was not established on both sides"
for side in client server; do
  socket=$work/$side.sock
  interval=$(session heartbeat_interval_ms "$socket")
  missing=$(session missing_heartbeats_allowed "$socket")
  timeouts=$(session kernel_user_timeout_ms "$socket")
  [[ $interval == 400 && $missing == 2 ]] ||
    fail "$side uses a heartbeat of $interval ms x $missing, expected the negotiated 400 ms x 2"
  [[ $timeouts == '[1200]' ]] ||
    fail "$side's connection has TCP_USER_TIMEOUT $timeouts ms, expected [1200] (from 400 ms x 2)"
  echo "ok: $side heartbeat 400 ms x 2, TCP_USER_TIMEOUT $timeouts ms"
done
