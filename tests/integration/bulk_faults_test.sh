#!/usr/bin/env bash
# Integration test: two random files (256 MiB each by default) pushed both ways at once through one
# `tether client -L` connection while the tunnel's TCP connection is killed every ~400 ms with ss -K
# and, once, silently blackholed with nftables for 2.5 s (far longer than the at most 600 ms liveness
# budget). Asserts: the sha256 of what arrived equals the source's in both directions, and the client
# logged one resume per fault and never replaced its session.
# Needs root (ss -K, nftables). Usage: bulk_faults_test.sh PATH/TO/tether
# Environment: BULK_MEBIBYTES (default 256; smaller for sanitizer builds), SHOW_LOGS=1 prints the
# tether logs, KEEP=1 keeps the temporary directory.
set -euo pipefail
tether=$1
# shellcheck source=SCRIPTDIR/lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
lib_require_root_and_nft socat pv cmp stat

mebibytes=${BULK_MEBIBYTES:-256}
bytes=$((mebibytes * 1024 * 1024))
# Paced so that the transfer lasts at least ~8 s whatever the size (faults must land mid-transfer);
# at 256 MiB the pace (32 MiB/s) is about what two idle cores push both ways through TLS anyway.
rate_kib=$((mebibytes * 1024 / 8))
((rate_kib > 0)) || rate_kib=1

head -c "$bytes" /dev/urandom >"$work/a.source" &
a_generator=$!
head -c "$bytes" /dev/urandom >"$work/b.source"
wait "$a_generator"

target_port=$(free_port)
# The far side: sends b.source (paced) and saves what it receives as a.received; -t 120: once one
# direction has ended the other may go on for up to 120 s.
spawn socat -t 120 TCP-LISTEN:"$target_port",bind=127.0.0.1,reuseaddr \
  "SYSTEM:exec pv -q -L ${rate_kib}k $work/b.source!!CREATE:$work/a.received"
far_pid=$spawned
wait_port "$target_port" 10 || fail "socat did not listen on $target_port"
start_tunnel "$target_port"
require_working_ss_kill
echo "$(elapsed) s: tether server on $server_port, client -L $local_port, far end on $target_port;" \
  "$mebibytes MiB each way, paced at $rate_kib KiB/s"

# The near side, through the tunnel: sends a.source (paced) and saves what comes back as b.received.
transfer_start_us=${EPOCHREALTIME/./}
spawn timeout 150 socat -t 120 "SYSTEM:exec pv -q -L ${rate_kib}k $work/a.source!!CREATE:$work/b.received" \
  TCP:127.0.0.1:"$local_port"
near_pid=$spawned

size_of() { if [[ -f $1 ]]; then stat -c %s "$1"; else echo 0; fi; }
transfer_running() { kill -0 "$near_pid" 2>/dev/null || kill -0 "$far_pid" 2>/dev/null; }
progress() {  # the least advanced direction, in percent
  local a b
  a=$(size_of "$work/a.received")
  b=$(size_of "$work/b.received")
  echo $(((a < b ? a : b) * 100 / bytes))
}

echo "$(elapsed) s: ss -K on the tunnel's connection every ~400 ms"
start_cuts 400 150
deadline=$((${EPOCHREALTIME/./} + 120 * 1000000))
while transfer_running && (($(progress) < 35)) && ((${EPOCHREALTIME/./} < deadline)); do nap 0.1; done
stop_cuts
transfer_running || fail "the transfer ended before the blackhole (at $(progress)% both ways)"
echo "$(elapsed) s: $(cuts) cuts so far, $(resumes) resumes; at $(progress)%: nftables blackhole of 2500 ms" \
  "(liveness budget at most $budget_ms ms)"
blackhole 2500
[[ -n $blackhole_detection_ms ]] || fail "the client did not notice a 2500 ms blackhole"
transfer_running || fail "the transfer ended during the blackhole: it cannot have been mid-transfer"
wait_session_live 15 || fail "the session did not resume within 15 s of the blackhole's end"
blackhole_downtime=$(last_downtime_ms)
blackhole_resume=$(resumes)
echo "$(elapsed) s: resumed after $blackhole_downtime ms; at $(progress)%: cuts again until the end"
start_cuts 400 150

status=0
wait "$near_pid" || status=$?
stop_cuts
transfer_us=$((${EPOCHREALTIME/./} - transfer_start_us))
((status != 124)) || fail "the transfer hung: the near socat was killed by timeout after 150 s"
((status == 0)) || fail "the near socat exited with status $status"
# The far socat ends once both directions are done; it may trail the near one by a little.
for _ in $(seq 100); do kill -0 "$far_pid" 2>/dev/null || break; nap 0.1; done
if kill -0 "$far_pid" 2>/dev/null; then fail "the far socat still runs 10 s after the near one ended"; fi

result=0
for direction in a b; do
  source_sum=$(sha256sum <"$work/$direction.source" | cut -d' ' -f1)
  received_sum=$(sha256sum <"$work/$direction.received" | cut -d' ' -f1)
  received=$(size_of "$work/$direction.received")
  label=$([[ $direction == a ]] && echo "client -> server" || echo "server -> client")
  echo "  $label: sent $source_sum, received $received_sum ($received of $bytes bytes)"
  if [[ $source_sum != "$received_sum" ]]; then
    echo "  $label differs: $(cmp "$work/$direction.source" "$work/$direction.received" 2>&1 | head -1)"
    result=1
  fi
done
((result == 0)) || fail "the data differs from what was sent"

assert_every_fault_survived  # sets $faults
longest_cut=$(longest_downtime_ms "$blackhole_resume")
throughput=$(awk -v b="$bytes" -v us="$transfer_us" 'BEGIN { printf "%.1f", b / 1048576 / (us / 1e6) }')
echo "bulk_faults: PASS in $(elapsed) s: $mebibytes MiB each way in $((transfer_us / 1000000)) s" \
  "($throughput MiB/s each way), sha256 equal both ways; $(cuts) cuts (ss -K) + 1 blackhole of 2500 ms" \
  "(noticed after $blackhole_detection_ms ms: $blackhole_cause; resumed after $blackhole_downtime ms);" \
  "$(resumes) resumes logged for $faults faults, longest downtime after a cut $longest_cut ms," \
  "$(bytes_replayed) bytes replayed"
