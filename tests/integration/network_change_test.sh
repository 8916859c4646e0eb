#!/usr/bin/env bash
# Integration test: the client moves at once when the address its connection uses disappears.
# The client runs in a network namespace joined to this one by a veth pair; it connects from
# 10.77.X.2, and while a transfer runs that address is replaced by 10.77.X.3. Heartbeats are slow
# (5 s x 3), so only the rtnetlink watcher can explain a quick move: the client must log the
# address removal, resume within 2 s, and deliver the bytes intact. A second client with
# --ignore-network-changes shows the difference (it is still suspended when the first has resumed).
# Usage: network_change_test.sh PATH/TO/tether
set -euo pipefail
tether=$(realpath "$1")
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: needs root (network namespaces)"; exit 77; fi
for tool in ip socat pv sha256sum; do command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }; done

# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
netns_create move 77

server_port=$(free_port)
sink_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn socat -u TCP-LISTEN:$sink_port,reuseaddr,bind=127.0.0.1 OPEN:"$work/received",creat,trunc
spawn "$tether" server --listen "$server_address:$server_port" --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow "127.0.0.1:$sink_port" --auth none \
  --heartbeat-interval 5000 --missing-heartbeats 3 --control-socket none >"$work/server.log" 2>&1
wait_for 10 grep -q "server listening" "$work/server.log" || fail "server did not start"
run_client() {  # run_client LOG LOCALPORT [FLAGS...]
  local log=$1 port=$2
  shift 2
  spawn ip netns exec "$namespace" "$tether" ${VERBOSE:+-v} client --server "$server_address:$server_port" \
    --fingerprint "$fingerprint" --known-servers "$work/known" -L "$port:127.0.0.1:$sink_port" \
    --heartbeat-interval 5000 --missing-heartbeats 3 --control-socket none "$@" >"$work/$log" 2>&1
}
run_client client.log 7001 ${CLIENT_FLAGS:-}
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish"
run_client blind.log 7002 --ignore-network-changes
wait_for 10 grep -q "established" "$work/blind.log" || fail "second client did not establish"

head -c 16M /dev/urandom >"$work/source"
ip netns exec "$namespace" bash -c "pv -q -L 4m '$work/source' | socat -u - TCP:127.0.0.1:7001" &
sender=$!
sleep 1.5
ip -n "$namespace" addr add "$client_prefix.3/24" dev "$client_side"
ip -n "$namespace" addr del "$client_prefix.2/24" dev "$client_side"
wait_for 5 grep -q "resumed" "$work/client.log" || fail "client did not resume within 5 s of the address change"
grep -q "address $client_prefix.2 removed" "$work/client.log" || fail "client did not log the address removal"
downtime=$(grep -o "resumed after [0-9]* ms" "$work/client.log" | head -1 | grep -o "[0-9]*")
((downtime < 2000)) || fail "resume took $downtime ms"
blind_resumed=$(grep -c "resumed" "$work/blind.log" || true)
wait $sender
expected=$(stat -c %s "$work/source")
sink_complete() { [[ $(stat -c %s "$work/received" 2>/dev/null || echo 0) -ge $expected ]]; }
wait_for 60 sink_complete || fail "sink got $(stat -c %s "$work/received") of $expected bytes"
[[ $(sha256sum <"$work/source") == $(sha256sum <"$work/received") ]] || fail "bytes differ"
echo "ok: address $client_prefix.2 removed mid-transfer: the client moved in $downtime ms (heartbeats alone: 15 s budget; the client without the watcher had resumed $blind_resumed times by then); 16 MiB intact"
