# shellcheck shell=bash
# Shared helpers of the fault-injection integration tests (redis_faults_test.sh, bulk_faults_test.sh),
# on top of common.sh ($work, spawn, the cleanup trap, fail, print_logs, free_port, listening,
# wait_for, nap). Source it after `set -euo pipefail` and after setting `tether` to the binary under
# test. It adds to the cleanup the deletion of this test's nftables table (before the processes are
# ended), and provides: bounded waits on ports and logs, a TLS tether server/client pair with short
# liveness settings, and two fault injectors that touch only the tether server's port: `cut_tunnel`
# (ss -K) and `blackhole_on`/`blackhole_off` (nftables drop on lo).
# Environment: SHOW_LOGS=1 prints the tether logs even on success; KEEP=1 keeps $work (on failure it
# is kept anyway, without its files over 10 MB); HEARTBEAT_MS (200) and MISSING_HEARTBEATS (2) set
# both sides' liveness.

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
nft_table="tether_test_$$"
nft_table_created=0
lib_start_us=${EPOCHREALTIME/./}
lib_delete_nft_table() {
  if [[ $nft_table_created == 1 ]]; then nft delete table inet "$nft_table" 2>/dev/null; fi
}
cleanup_before_kill+=(lib_delete_nft_table)

lib_require_root_and_nft() {
  if [[ $(id -u) -ne 0 ]]; then echo "SKIP: needs root (ss -K, nftables)"; exit 77; fi
  command -v nft >/dev/null || { echo "SKIP: nft missing (apt-get install nftables)"; exit 77; }
  # nft present but unusable (no CAP_NET_ADMIN, no nf_tables in this kernel/container): skip too.
  if ! nft add table inet "$nft_table" 2>"$work/nft.err"; then
    echo "SKIP: nftables unusable: $(head -1 "$work/nft.err")"
    exit 77
  fi
  nft_table_created=1
  nft add chain inet "$nft_table" input '{ type filter hook input priority -10; policy accept; }'
  for tool in "$@" ss sha256sum timeout; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
  done
}

elapsed() {  # seconds since the test started, one decimal (no fork: bash 5's EPOCHREALTIME)
  local us=$((${EPOCHREALTIME/./} - lib_start_us))
  printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# The polling helpers below avoid forks: on a loaded two-core machine every fork+exec costs ~20 ms,
# enough to make a 300 ms fault cadence drift to two seconds. wait_for (fork-free too) polls every
# 20 ms here.
wait_for_interval=0.02
sleep_ms() { local fraction; printf -v fraction '%03d' $(($1 % 1000)); nap "$(($1 / 1000)).$fraction"; }

count_in() {  # count_in FILE STRING: sets $matches to the number of lines of FILE containing STRING
  matches=0
  [[ -f $1 ]] || return 0
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == *"$2"* ]]; then matches=$((matches + 1)); fi
  done <"$1"
}

wait_port() {  # wait_port PORT SECONDS: until something listens on 127.0.0.1:PORT
  wait_for "$2" listening "$1"
}

wait_log() {  # wait_log FILE STRING SECONDS [COUNT]: until COUNT (1) lines of FILE contain STRING
  wait_for "$3" lib_log_count_reaches "$1" "$2" "${4:-1}"
}
lib_log_count_reaches() { count_in "$1" "$2"; ((matches >= $3)); }

# Liveness for both sides: heartbeat every 200 ms, 2 may go missing. The rule that turns these into
# a detection budget lives in src/session/heartbeat_policy.hpp only; budget_ms is that figure for
# the log lines of the tests that source this file (worst_case_budget, which
# heartbeat_negotiation_test checks against the binary as its kernel_user_timeout_ms).
heartbeat_ms=${HEARTBEAT_MS:-200}
missing_heartbeats=${MISSING_HEARTBEATS:-2}
# shellcheck disable=SC2034  # used by the tests that source this file
budget_ms=$((heartbeat_ms * (missing_heartbeats + 1)))

start_tunnel() {  # start_tunnel TARGET_PORT: TLS server + client -L, authenticated with SCRAM-SHA-256-PLUS
  local target_port=$1 fingerprint password
  server_port=$(free_port)
  local_port=$(free_port)
  # shellcheck disable=SC2154  # $tether is set by the test that sources this file
  fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
  [[ $fingerprint == sha256:* ]] || fail "tether keygen printed no fingerprint"
  # One user, made with `tether passwd`; the client proves the password (never stored on the server).
  password=$(head -c 18 /dev/urandom | base64)
  mkdir -p -m 700 "$work/users"
  printf '%s\n' "$password" | "$tether" passwd --users "$work/users/users" demo 2>"$work/passwd.log" ||
    fail "tether passwd failed: $(cat "$work/passwd.log")"
  spawn "$tether" server --listen 127.0.0.1:"$server_port" --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --allow 127.0.0.1:"$target_port" --users "$work/users/users" \
    --heartbeat-interval "$heartbeat_ms" --missing-heartbeats "$missing_heartbeats" \
    >"$work/server.log" 2>&1
  server_pid=$spawned
  wait_port "$server_port" 10 || fail "tether server did not listen on $server_port"
  TETHER_PASSWORD=$password spawn "$tether" client --server 127.0.0.1:"$server_port" \
    --fingerprint "$fingerprint" --known-servers "$work/known_servers" --user demo \
    -L "$local_port:127.0.0.1:$target_port" \
    --heartbeat-interval "$heartbeat_ms" --missing-heartbeats "$missing_heartbeats" \
    >"$work/client.log" 2>&1
  client_pid=$spawned
  wait_log "$work/client.log" "established" 10 || fail "tether client did not establish its session"
  wait_port "$local_port" 10 || fail "tether client did not listen on $local_port"
  grep -q "authenticated demo with SCRAM-SHA-256-PLUS" "$work/server.log" ||
    fail "the server did not authenticate the client with SCRAM-SHA-256-PLUS"
}

# ---- fault injectors: they touch only TCP connections to or from the tether server's port.

session_live() {  # every suspension the client logged has been followed by its resume
  local suspended
  count_in "$work/client.log" "suspended"
  suspended=$matches
  count_in "$work/client.log" "resumed after"
  ((matches >= suspended))
}

wait_session_live() { wait_for "$1" session_live; }  # wait_session_live SECONDS

# Kills the tunnel's TCP connection (both ends) with ss -K; appends one line to $work/cuts when it
# killed something, and one to $work/cuts-unnoticed when the client did not log a suspension within
# 5 s of it.
cut_tunnel() {
  local killed before
  count_in "$work/client.log" "suspended"
  before=$matches
  killed=$(ss -HK state established "( sport = :$server_port or dport = :$server_port )" 2>/dev/null |
    grep -c . || true)
  ((killed > 0)) || return 0
  echo "$(elapsed) killed $killed sockets" >>"$work/cuts"
  wait_log "$work/client.log" "suspended" 5 $((before + 1)) || elapsed >>"$work/cuts-unnoticed"
}

# One cut, as a probe: a kernel without CONFIG_INET_DIAG_DESTROY makes ss -K kill nothing, and the
# test would then pass without faults: skip instead. The probe counts as one of the cuts.
require_working_ss_kill() {
  cut_tunnel
  [[ -s $work/cuts ]] || { echo "SKIP: ss -K killed no socket (kernel without CONFIG_INET_DIAG_DESTROY?)"; exit 77; }
  wait_session_live 10 || fail "the session did not resume after the first cut"
}

# Cuts every PERIOD_MS (+-25% jitter), each time only once the session has resumed from the previous
# fault, so that every cut hits a live session (and one cut means one suspension and one resume);
# stops when STOP_FILE exists or after MAX_SECONDS. Run it in the background with `spawn`.
cut_loop() {  # cut_loop PERIOD_MS STOP_FILE MAX_SECONDS
  local period=$1 stop_file=$2 deadline=$((${EPOCHREALTIME/./} + $3 * 1000000))
  while [[ ! -e $stop_file ]] && ((${EPOCHREALTIME/./} < deadline)); do
    wait_session_live 10 || echo "$(elapsed) the session did not resume within 10 s" >>"$work/cuts-stuck"
    sleep_ms $((period * 3 / 4 + RANDOM % (period / 2 + 1)))
    [[ -e $stop_file ]] && break
    cut_tunnel
  done
}
start_cuts() {  # start_cuts PERIOD_MS MAX_SECONDS: cut_loop in the background
  rm -f "$work/cuts.stop"
  spawn cut_loop "$1" "$work/cuts.stop" "$2"
  cut_loop_pid=$spawned
}
stop_cuts() {  # stop the background cut_loop and wait for it (it finishes its current cut)
  touch "$work/cuts.stop"
  wait "$cut_loop_pid" 2>/dev/null || true
}
cuts() { if [[ -f $work/cuts ]]; then grep -c . "$work/cuts"; else echo 0; fi; }
cuts_unnoticed() { if [[ -f $work/cuts-unnoticed ]]; then grep -c . "$work/cuts-unnoticed"; else echo 0; fi; }

blackhole_on() {  # silently drop every packet to or from the tether server's port (on arrival at lo)
  nft "add rule inet $nft_table input iif lo tcp dport $server_port drop;" \
    "add rule inet $nft_table input iif lo tcp sport $server_port drop"
}
blackhole_off() {
  nft flush chain inet "$nft_table" input
}

log_time_ms() {  # log_time_ms LOG_LINE: the line's spdlog timestamp in epoch milliseconds
  date -d "$(sed -E 's/^\[([^]]*)\].*/\1/' <<<"$1")" +%s%3N
}

# blackhole MS: drop the tunnel's packets for MS milliseconds. Sets blackhole_detection_ms (how long
# the client took to declare the path dead; empty if it never did while the blackhole lasted) and
# blackhole_cause (the client's suspension cause), and appends a summary to $work/blackholes.
blackhole() {
  local before line on_ms
  count_in "$work/client.log" "suspended"
  before=$matches
  blackhole_on
  on_ms=$((${EPOCHREALTIME/./} / 1000))  # the rules are in force from here at the latest
  sleep_ms "$1"
  blackhole_off
  line=$({ grep "suspended" "$work/client.log" || true; } | sed -n "$((before + 1))p")
  blackhole_detection_ms=""
  blackhole_cause="not noticed"
  if [[ -n $line ]]; then
    blackhole_detection_ms=$(($(log_time_ms "$line") - on_ms))
    blackhole_cause=${line##*suspended: }
  fi
  echo "$(elapsed) blackhole of $1 ms: client noticed after ${blackhole_detection_ms:-never} ms ($blackhole_cause)" |
    tee -a "$work/blackholes"
}
blackholes_noticed() { { grep -v "not noticed" "$work/blackholes" 2>/dev/null || true; } | grep -c . || true; }

# ---- log figures

resumes() { grep -c "resumed after" "$work/client.log" || true; }
suspensions() { grep -c "suspended" "$work/client.log" || true; }
new_sessions() { grep -c "new session" "$work/client.log" || true; }
established_count() { grep -c "established" "$work/client.log" || true; }
# longest_downtime_ms [SKIP]: the largest X of the client's "resumed after X ms" lines (0 when none),
# leaving out the SKIP-th resume (counted from 1) if given.
longest_downtime_ms() {
  { grep -o "resumed after [0-9]* ms" "$work/client.log" || true; } |
    awk -v skip="${1:-0}" 'NR != skip && $3 > max { max = $3 } END { print max + 0 }'
}
last_downtime_ms() {  # the X of the client's last "resumed after X ms" line
  { grep -o "resumed after [0-9]* ms" "$work/client.log" || true; } | awk 'END { print $3 + 0 }'
}
bytes_replayed() {  # total of the client's "N bytes replayed"
  { grep -o "[0-9]* bytes replayed" "$work/client.log" || true; } | awk '{ sum += $1 } END { print sum + 0 }'
}

# The session must have survived every fault: one session only, never replaced nor closed, no
# tunnelled connection reset, no error logged, both processes alive, and at least MIN_RESUMES resumes
# logged by the client.
assert_session_survived() {  # assert_session_survived MIN_RESUMES
  local resumed
  resumed=$(resumes)
  (($(new_sessions) == 0)) || fail "the client started a new session: $(grep -m1 "new session" "$work/client.log")"
  (($(established_count) == 1)) || fail "the client established $(established_count) sessions, expected 1"
  local log
  for log in "$work/client.log" "$work/server.log"; do
    ! grep -q "session [0-9a-f]* closed" "$log" ||
      fail "the session closed: $(grep -m1 "session [0-9a-f]* closed" "$log")"
    ! grep -q "reset by the peer\|\[error\]\|\[critical\]" "$log" ||
      fail "$(basename "$log"): $(grep -m1 "reset by the peer\|\[error\]\|\[critical\]" "$log")"
  done
  ((resumed >= $1)) || fail "the client logged $resumed resumes, expected at least $1"
  kill -0 "$client_pid" 2>/dev/null || fail "tether client exited"
  kill -0 "$server_pid" 2>/dev/null || fail "tether server exited"
}

# Every fault injected (each cut the client noticed, the blackholes it noticed) was survived, one
# resume per fault, and no cut was left unnoticed or stuck. Sets $faults to their number.
assert_every_fault_survived() {
  (($(cuts_unnoticed) == 0)) ||
    fail "$(cuts_unnoticed) cuts killed the tunnel's connection but the client logged no suspension"
  [[ ! -f $work/cuts-stuck ]] || fail "$(cat "$work/cuts-stuck")"
  faults=$(($(cuts) + $(blackholes_noticed)))
  assert_session_survived "$faults"
}
