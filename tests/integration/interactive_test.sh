#!/usr/bin/env bash
# Integration test: an interactive stream stays responsive while a bulk transfer shares the session
# over a slow link. The client runs in a network namespace behind a veth pair shaped to 20 Mbit/s
# (tc tbf) towards the server; one -L stream pushes bulk data as fast as it can while another
# measures the round trip of small echoes (tests/integration/interactive_latency.py). Without care,
# an interactive byte waits behind everything queued before it: the session's window and the
# kernel's send buffer, seconds at this rate. The test asserts the p90 round trip stays below
# 250 ms (a 16 KiB frame takes 6.5 ms at 20 Mbit/s) and prints the figures.
# Usage: interactive_test.sh PATH/TO/tether
set -euo pipefail
tether=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: needs root (network namespaces, tc)"; exit 77; fi
for tool in ip tc socat python3; do command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }; done

# shellcheck source=SCRIPTDIR/netns.sh
source "$(dirname "$0")/netns.sh"
netns_create slow 78
ip netns exec "$namespace" tc qdisc add dev "$client_side" root tbf rate 20mbit burst 32kb latency 50ms \
  || { echo "SKIP: tc tbf unavailable"; exit 77; }

server_port=$(free_port)
echo_port=$(free_port)
sink_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn socat TCP-LISTEN:$echo_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn socat -u TCP-LISTEN:$sink_port,reuseaddr,fork,bind=127.0.0.1 OPEN:/dev/null
spawn "$tether" server --listen "$server_address:$server_port" --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow "127.0.0.1:*" --auth none \
  >"$work/server.log" 2>&1
wait_for 10 grep -q "server listening" "$work/server.log" || fail "server did not start"
spawn ip netns exec "$namespace" "$tether" client --server "$server_address:$server_port" \
  --fingerprint "$fingerprint" --known-servers "$work/known" \
  -L "7101:127.0.0.1:$echo_port" -L "7102:127.0.0.1:$sink_port" >"$work/client.log" 2>&1
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish"

idle=$(ip netns exec "$namespace" python3 "$here/interactive_latency.py" 127.0.0.1 7101 30 20)
spawn ip netns exec "$namespace" bash -c "head -c 2G /dev/zero | socat -u - TCP:127.0.0.1:7102" 2>/dev/null
sleep 2  # let the bulk transfer fill every queue it can
busy=$(ip netns exec "$namespace" python3 "$here/interactive_latency.py" 127.0.0.1 7101 100 20)
echo "interactive round trip over 20 Mbit/s, idle: $idle"
echo "interactive round trip over 20 Mbit/s, beside a bulk transfer: $busy"
p90=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['p90_ms'])" "$busy")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 250 else 1)" "$p90" \
  || fail "p90 round trip $p90 ms beside a bulk transfer"
echo "ok: the interactive stream stays responsive (p90 $p90 ms) while bulk shares the session"
