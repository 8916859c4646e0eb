#!/usr/bin/env bash
# Integration test: a 48 MiB transfer through `tether client -L` to a local sink survives the tunnel's
# TCP connection being killed (ss -K) twice mid-transfer; the sink's sha256 equals the source's and the
# client logs the resumes. Usage: tunnel_cut_test.sh PATH/TO/tether
# Environment: SHOW_LOGS=1 prints the tether logs, KEEP=1 keeps the temporary directory.
set -euo pipefail
tether=$1
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: ss -K needs root"; exit 77; fi
for tool in socat pv ss sha256sum; do command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }; done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
local_port=$(free_port)
target_port=$(free_port)

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn socat -u TCP-LISTEN:$target_port,reuseaddr,bind=127.0.0.1 OPEN:"$work/received",creat,trunc
spawn "$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 \
  >"$work/server.log" 2>&1
spawn "$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" --known-servers "$work/known" \
  -L $local_port:127.0.0.1:$target_port --heartbeat-interval 500 >"$work/client.log" 2>&1
wait_for 10 grep -q "established" "$work/client.log" || fail "client never established"

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
received_all() { [[ -f $work/received && $(stat -c %s "$work/received") -ge $expected ]]; }
wait_for 30 received_all || true  # a short sink fails the comparison below
sleep 0.2
source_sum=$(sha256sum <"$work/source" | cut -d' ' -f1)
received_sum=$(sha256sum <"$work/received" | cut -d' ' -f1)
resumes=$(grep -c "resumed" "$work/client.log" || true)
echo "source $source_sum"
echo "sink   $received_sum ($(stat -c %s "$work/received") of $expected bytes), client resumes: $resumes"
[[ $source_sum == "$received_sum" ]] || fail "the sink's sha256 differs from the source's"
((resumes >= 2)) || fail "the client logged $resumes resumes, expected at least 2"
echo "tunnel survived 2 cuts with sha256 equal"
