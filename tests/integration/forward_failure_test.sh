#!/usr/bin/env bash
# ExitOnForwardFailure: a client whose -L port is in use exits 2 at once with a message naming it;
# a -R the server refuses (no --allow-listen for it) ends the client with exit 2 and a message,
# while with --keep-going the client runs on and its other forwards keep working.
# Usage: forward_failure_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
echo_port=$(free_port)
spawn socat TCP-LISTEN:$echo_port,bind=127.0.0.1,fork,reuseaddr EXEC:cat
spawn "$tether" server --listen 127.0.0.1:$server_port --allow "127.0.0.1:$echo_port" \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" --auth none \
  >"$work/server.log" 2>&1
wait_for 10 listening "$server_port" || fail "the server did not listen"
wait_for 10 listening "$echo_port" || fail "the echo service did not listen"
trust=(--server "127.0.0.1:$server_port" --fingerprint "$fingerprint" --known-servers "$work/known")

# A local port in use: exit 2, the message names the port.
busy=$(free_port)
spawn socat TCP-LISTEN:$busy,bind=127.0.0.1,fork,reuseaddr EXEC:cat
wait_for 10 listening "$busy" || fail "the busy port did not listen"
code=0
timeout 10 "$tether" client "${trust[@]}" -L "$busy:127.0.0.1:$echo_port" >"$work/busy.log" 2>&1 ||
  code=$?
[[ $code == 2 ]] || fail "a -L on a port in use exited $code, expected 2"
grep -q "$busy" "$work/busy.log" || fail "the message does not name port $busy: $(cat "$work/busy.log")"

# A refused -R: exit 2 with a message.
refused_port=$(free_port)
code=0
timeout 10 "$tether" client "${trust[@]}" -R "127.0.0.1:$refused_port:127.0.0.1:$echo_port" \
  >"$work/refused.log" 2>&1 || code=$?
[[ $code == 2 ]] || fail "a refused -R exited $code, expected 2: $(cat "$work/refused.log")"
grep -q "refused by the server" "$work/refused.log" || fail "no message for the refused -R"

# --keep-going: the client runs on; its -L still reaches the echo service.
local_port=$(free_port)
spawn "$tether" client "${trust[@]}" --keep-going -L "$local_port:127.0.0.1:$echo_port" \
  -R "127.0.0.1:$refused_port:127.0.0.1:$echo_port" >"$work/keep.log" 2>&1
keep_pid=$spawned
wait_for 10 grep -q "refused by the server" "$work/keep.log" || fail "no message for the refused -R"
nap 1
kill -0 "$keep_pid" 2>/dev/null || fail "--keep-going: the client exited"
reply=$(printf 'still here\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == "still here" ]] || fail "--keep-going: -L returned '$reply'"
echo "forward failures: ok"
