#!/usr/bin/env bash
# Integration test: a 48 MiB transfer through `tether client -L` to a local sink survives the tunnel's
# TCP connection being killed (ss -K) twice mid-transfer; the sink's sha256 equals the source's and the
# client logs the resumes. Usage: tunnel_cut_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: ss -K needs root"; exit 77; fi
for tool in socat pv ss sha256sum; do command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }; done

work=$(mktemp -d)
pids=()
cleanup() {
  # Newest first (the client closes while the server still runs), then make sure nothing lingers.
  for ((index = ${#pids[@]} - 1; index >= 0; index--)); do kill "${pids[index]}" 2>/dev/null || true; sleep 0.2; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${keep:-0} == 1 ]]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {  # a port nothing listens on, from a range chosen by the process id
  local port=$((10000 + ($$ * 7 + $1 * 131) % 22000))
  while ss -Htan "( sport = :$port or dport = :$port )" | grep -q .; do port=$((port + 1)); done
  echo $port
}
server_port=$(free_port 1)
local_port=$(free_port 2)
target_port=$(free_port 3)

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
socat -u TCP-LISTEN:$target_port,reuseaddr,bind=127.0.0.1 OPEN:"$work/received",creat,trunc &
pids+=($!)
"$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 \
  >"$work/server.log" 2>&1 &
pids+=($!)
"$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" --known-servers "$work/known" \
  -L $local_port:127.0.0.1:$target_port --heartbeat-interval 500 >"$work/client.log" 2>&1 &
client_pid=$!
pids+=($client_pid)

for _ in $(seq 100); do grep -q "established" "$work/client.log" && break; sleep 0.1; done
grep -q "established" "$work/client.log" || { keep=1; echo "client never established"; cat "$work/client.log"; exit 1; }

head -c 48M /dev/urandom >"$work/source"
pv -q -L 12m "$work/source" | socat -u - TCP:127.0.0.1:$local_port &
sender=$!
for cut in 1 2; do
  sleep 1.2
  ss -K state established "( dport = :$server_port or sport = :$server_port )" >/dev/null 2>&1 || true
  echo "cut $cut done"
done
wait $sender

expected=$(stat -c %s "$work/source")
for _ in $(seq 300); do
  [[ -f $work/received && $(stat -c %s "$work/received") -ge $expected ]] && break
  sleep 0.1
done
sleep 0.2
source_sum=$(sha256sum <"$work/source" | cut -d' ' -f1)
received_sum=$(sha256sum <"$work/received" | cut -d' ' -f1)
resumes=$(grep -c "resumed" "$work/client.log" || true)
echo "source $source_sum"
echo "sink   $received_sum ($(stat -c %s "$work/received") of $expected bytes), client resumes: $resumes"
if [[ $source_sum != "$received_sum" || $resumes -lt 2 ]]; then
  keep=1
  echo "--- client log"; cat "$work/client.log"; echo "--- server log"; cat "$work/server.log"
  exit 1
fi
echo "tunnel survived 2 cuts with sha256 equal"
if [[ ${SHOW_LOGS:-0} == 1 ]]; then echo "--- client log"; cat "$work/client.log"; echo "--- server log"; cat "$work/server.log"; fi
