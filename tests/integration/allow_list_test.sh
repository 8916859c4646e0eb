#!/usr/bin/env bash
# Integration test of what the server lets clients reach (issue #12, items 6-8), against the real
# binary on loopback:
#   - a host-name pattern (localhost:PORT) reaches nothing, because localhost resolves to loopback,
#     while the address pattern 127.0.0.1:PORT works, for a literal and for the name localhost;
#   - -R is refused without --allow-listen, and below 1024 with a range; with a listed port it works;
#   - (root and nftables) a target whose SYNs are dropped gets its reply within --connect-timeout
#     (exit 7 for stdio), and a burst of 20 such connects holds at most 16 in progress.
# Usage: allow_list_test.sh PATH/TO/tether
set -euo pipefail
tether=$(realpath "$1")
for tool in socat ss timeout; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
server_port=$(free_port)
server2_port=$(free_port)
echo_port=$(free_port)      # an echo service the address pattern allows
name_port=$(free_port)      # an echo service allowed only by the name pattern localhost:PORT
blackhole_port=$(free_port) # SYNs dropped by nftables
remote_port=$(free_port)    # -R, listed in the second server's --allow-listen
local_name=$(free_port)
local_echo=$(free_port)
local_localhost=$(free_port)
local_blackhole=$(free_port)

spawn socat TCP-LISTEN:$echo_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn socat TCP-LISTEN:$name_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
server_options=(--cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" --auth none
  --heartbeat-interval 500)

# ---- 1. name pattern vs address pattern; -R without --allow-listen
spawn "$tether" server --listen 127.0.0.1:$server_port "${server_options[@]}" \
  --allow "localhost:$name_port" --allow "127.0.0.1:$echo_port" --allow "127.0.0.1:$blackhole_port" \
  --connect-timeout 2 >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"
wait_for 5 listening $echo_port || fail "echo service did not start"
spawn "$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" --heartbeat-interval 500 --keep-going \
  -L $local_name:localhost:$name_port -L $local_echo:127.0.0.1:$echo_port \
  -L $local_localhost:localhost:$echo_port -L $local_blackhole:127.0.0.1:$blackhole_port \
  -R 127.0.0.1:$remote_port:127.0.0.1:$echo_port >"$work/client.log" 2>&1
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish"
wait_for 10 listening $local_blackhole || fail "client did not listen"

reply=$(printf 'address pattern\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$local_echo)
[[ $reply == "address pattern" ]] || fail "127.0.0.1:PORT through --allow 127.0.0.1:PORT returned '$reply'"
reply=$(printf 'by name\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$local_localhost)
[[ $reply == "by name" ]] || fail "localhost:PORT through --allow 127.0.0.1:PORT returned '$reply'"
echo "ok: --allow 127.0.0.1:PORT reaches 127.0.0.1:PORT, also when the client names localhost"

reply=$(printf 'x\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$local_name 2>/dev/null || true)
[[ -z $reply ]] || fail "--allow localhost:PORT reached the loopback echo service: '$reply'"
wait_for 5 grep -q "localhost' resolves only to loopback" "$work/client.log" ||
  fail "no refusal naming loopback for the host-name pattern"
echo "ok: --allow localhost:PORT is refused: $(grep -o "'localhost' resolves only to loopback[^(]*" "$work/client.log" | head -1)"

wait_for 10 grep -q "remote forward 127.0.0.1:$remote_port refused by the server" "$work/client.log" ||
  fail "-R without --allow-listen was not refused"
listening $remote_port && fail "the server listens on the -R port without --allow-listen"
grep -q "no --allow-listen" "$work/client.log" || fail "the -R refusal does not say why"
echo "ok: -R without --allow-listen refused"

# ---- 2. -R with --allow-listen: a listed port works, a low port through '*' does not
spawn "$tether" server --listen 127.0.0.1:$server2_port "${server_options[@]}" \
  --allow "127.0.0.1:$echo_port" --allow-listen "127.0.0.1:$remote_port" --allow-listen "127.0.0.1:*" \
  >"$work/server2.log" 2>&1
wait_for 10 listening $server2_port || fail "second server did not listen"
spawn "$tether" client --server 127.0.0.1:$server2_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" --heartbeat-interval 500 --keep-going \
  -R 127.0.0.1:$remote_port:127.0.0.1:$echo_port -R 127.0.0.1:25:127.0.0.1:$echo_port \
  >"$work/client2.log" 2>&1
wait_for 10 grep -q "remote forward: server listening on 127.0.0.1:$remote_port" "$work/client2.log" ||
  fail "-R with --allow-listen was not granted"
wait_for 10 listening $remote_port || fail "the server does not listen on the -R port"
reply=$(printf 'through -R\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$remote_port)
[[ $reply == "through -R" ]] || fail "-R echo returned '$reply'"
wait_for 5 grep -q "remote forward 127.0.0.1:25 refused by the server: .*below 1024" "$work/client2.log" ||
  fail "-R on port 25 was not refused (with --allow-listen 127.0.0.1:*)"
echo "ok: -R with --allow-listen works; port 25 through 127.0.0.1:* refused"

# ---- 3. blackholed target: a reply within the connect timeout; at most 16 connects in progress
if [[ $(id -u) -ne 0 ]] || ! command -v nft >/dev/null ||
  ! nft add table inet "$nft_table" 2>"$work/nft.err"; then
  echo "skipped: blackholed target (needs root and nftables)"
  exit 0
fi
nft_table_created=1
nft add chain inet "$nft_table" input '{ type filter hook input priority -10; policy accept; }'
nft add rule inet "$nft_table" input tcp dport "$blackhole_port" drop

set +e
timeout 30 "$tether" stdio --server 127.0.0.1:$server_port --known-servers "$work/known" \
  127.0.0.1:$blackhole_port </dev/null >/dev/null 2>"$work/stdio.log"
status=$?
set -e
[[ $status -eq 7 ]] || fail "stdio to a blackholed target exited $status, expected 7 (target failed)"
grep -q "timed out after 2 s" "$work/stdio.log" || fail "stdio's error does not say the connect timed out"
echo "ok: a blackholed target is reported unreachable after --connect-timeout 2 (stdio exit 7)"

syn_sent() { ss -Htn state syn-sent "( dport = :$blackhole_port )" | grep -c . || true; }
most=0
for _ in {1..20}; do
  exec {connection}<>/dev/tcp/127.0.0.1/$local_blackhole
  connections+=("$connection")
done
for _ in {1..40}; do  # 2 s: the burst's whole connect timeout
  now=$(syn_sent)
  ((now > most)) && most=$now
  nap 0.05
done
((most >= 1 && most <= 16)) || fail "$most target connects were in progress at once, expected 1 to 16"
# Each connect gets its reply: those past the cap wait their turn; one whose turn does not come
# within the timeout is refused unattempted. The client logs every reply (the server's warnings
# about them are rate-limited, 10 per 10 s).
all_replied() {
  # Unreachable, whichever step ran out of time (waiting for a slot, resolving, connecting).
  count_in "$work/client.log" "to 127.0.0.1:$blackhole_port: target unreachable"
  timed_out=$matches
  count_in "$work/client.log" "127.0.0.1:$blackhole_port was not attempted"
  unattempted=$matches
  ((timed_out >= 20))
}
wait_for 10 all_replied || fail "not every connect was answered ($timed_out timed out, $unattempted unattempted)"
[[ $(syn_sent) -eq 0 ]] || fail "target connects still in progress after the timeout"
for connection in "${connections[@]}"; do exec {connection}>&-; done
echo "ok: 20 connects to a blackholed target: at most $most in progress at once; $((timed_out - 1)) timed out, $unattempted waited their turn in vain"
