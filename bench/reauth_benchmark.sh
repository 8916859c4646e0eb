#!/usr/bin/env bash
# The re-authentication benchmark, through the real `tether server`: for each mechanism
# (SCRAM-SHA-256-PLUS, SCRAM-SHA-256, OAUTHBEARER with an RS256 token, EXTERNAL with an mTLS client
# certificate, PLAIN) a fresh server with `--max-reauth LIFETIME` (5s: every session
# re-authenticates every ~4.3-4.8 s, at 85-95% of its lifetime) and bench/load_generator
# --reauthenticate, which keeps N authenticated sessions open and one probe session (on a thread of
# its own) writing a 16-byte timestamped record every millisecond through a tunnelled stream to an
# echo listener. Plus, in each repetition, a baseline run "off": the same with SCRAM-SHA-256-PLUS
# and no --max-reauth (no re-authentication at all). Reported per mechanism, medians over the
# repetitions:
#   - re-authentication latency p50 / p99 as the client measured it (events::Reauthenticated: from
#     the exchange's start to its result), and re-authentications per second over the window;
#   - the server's CPU (utime + stime from /proc over the window) per re-authentication, raw (all of
#     the server's CPU, heartbeats and the probe's echo traffic included) and marginal (minus the
#     same run's baseline CPU rate: the re-authentications' own share); re-authentications per
#     second per server core = 1 / the marginal figure;
#   - the probe's largest and p99 gap between consecutive echoed records' arrivals, beside the
#     baseline's. The goal: no gap above 1 ms beyond the baseline's.
# A measurement, not a test (see bench/README.md); --check makes it the smoke test.
#
# Credentials are made here at run time, as in auth_benchmark.sh: a users file with `tether passwd`,
# an RSA-2048 key, its JWKS and an RS256 token signed with openssl, a P-256 CA and client
# certificate.
#
# Usage: bench/reauth_benchmark.sh [--tether PATH] [--generator PATH] [--sessions N] [--repeat R]
#                                  [--lifetime D] [--window S] [--settle S] [--mechanisms LIST]
#                                  [--check] [--keep-log]
#   --tether PATH      default build/gcc/apps/tether/tether
#   --generator PATH   default build/gcc/bench/load_generator
#   --sessions N       sessions kept open per run, besides the probe (default 1000)
#   --plain-sessions N the same for PLAIN (default 50: PLAIN costs the server a PBKDF2 per check,
#                      on its event loop, so 1,000 sessions every ~4.5 s would need more than the
#                      2 cores; with 100 a run on the loaded machine failed once in 6)
#   --repeat R         repetitions, the mechanisms interleaved (default 3); the table shows medians
#   --lifetime D       the server's --max-reauth (default 5s)
#   --window S         seconds measured per run (default 4), after --settle S seconds (default 1: opening
#                      1,000 sessions takes longer than a lifetime, so re-authentications are
#                      under way when the window opens; raise it for small --sessions)
#   --mechanisms LIST  comma-separated subset of SCRAM-SHA-256-PLUS, SCRAM-SHA-256, OAUTHBEARER,
#                      EXTERNAL, PLAIN (default all, PLAIN last; the baseline always runs)
#   --check            a smoke test, not a measurement: exit 0 only when, in every run with a
#                      lifetime, re-authentications happened, none failed (no session closed),
#                      every session re-authenticated and the probe's records all came back; and
#                      in the baseline none happened
#   --keep-log         keep the temp dir (server logs, credentials) and print where it is
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tether="$repo/build/gcc/apps/tether/tether"
generator="$repo/build/gcc/bench/load_generator"
sessions=1000
plain_sessions=50
repeat=3
lifetime=5s
window=4
settle=1
connect_window=16
mechanisms=SCRAM-SHA-256-PLUS,SCRAM-SHA-256,OAUTHBEARER,EXTERNAL,PLAIN
check=false
keep_log=false
while (($#)); do
  case $1 in
    --tether) tether=${2:?}; shift 2 ;;
    --generator) generator=${2:?}; shift 2 ;;
    --sessions) sessions=${2:?}; shift 2 ;;
    --plain-sessions) plain_sessions=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    --lifetime) lifetime=${2:?}; shift 2 ;;
    --window) window=${2:?}; shift 2 ;;
    --settle) settle=${2:?}; shift 2 ;;
    --connect-window) connect_window=${2:?}; shift 2 ;;
    --mechanisms) mechanisms=${2:?}; shift 2 ;;
    --check) check=true; shift ;;
    --keep-log) keep_log=true; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $tether ]] || { echo "tether binary not found: $tether" >&2; exit 2; }
[[ -x $generator ]] || { echo "load_generator not found: $generator" >&2; exit 2; }
for tool in openssl jq xxd base64; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
# One descriptor per session on each side: the soft limit up to the hard one (the server and the
# generator raise theirs too; as root the generator goes further).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < sessions + 200)); then
  echo "warning: descriptor limit $(ulimit -n) is below $((sessions + 200))" >&2
fi

# shellcheck source=bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_workdir tether-reauth-bench

# ---- Credentials, made now (as auth_benchmark.sh makes them)
make_bench_credentials

# The server's and the generator's arguments for a mechanism ("off": the baseline).
server_arguments() {
  case $1 in
    off) echo --auth SCRAM-SHA-256-PLUS --users "$work/users" ;;
    SCRAM-SHA-256-PLUS | SCRAM-SHA-256 | PLAIN)
      echo --auth "$1" --users "$work/users" --max-reauth "$lifetime"
      ;;
    OAUTHBEARER)
      echo --auth OAUTHBEARER --jwks "$work/jwks.json" --audience tether-bench \
        --issuer bench-issuer --max-reauth "$lifetime"
      ;;
    EXTERNAL) echo --auth EXTERNAL --client-ca "$work/ca.pem" --max-reauth "$lifetime" ;;
    *) echo "unknown mechanism: $1" >&2; return 2 ;;
  esac
}
# Password clients share one credential (--reuse-credential: PBKDF2 once, so that opening 1,000
# sessions does not take 1,000 PBKDF2s); a session's own credential would keep its salted password
# after its first exchange as well, so re-authentications cost the same either way.
client_arguments() {
  case $1 in
    off) client_arguments SCRAM-SHA-256-PLUS ;;
    SCRAM-SHA-256-PLUS | SCRAM-SHA-256 | PLAIN)
      echo --user bench --password-file "$work/password" --auth-mechanism "$1" \
        --expect-principal bench --reuse-credential
      ;;
    OAUTHBEARER) echo --token-file "$work/token" --auth-mechanism OAUTHBEARER --expect-principal bench ;;
    EXTERNAL)
      echo --cert "$work/client.pem" --key "$work/client.key" --auth-mechanism EXTERNAL \
        --expect-principal bench
      ;;
  esac
}

# run MECHANISM INDEX: one server, one generator run; its RESULT line goes to $work/results.
run() {
  local mechanism=$1 index=$2 port echo_port count=$sessions
  if [[ $mechanism == PLAIN ]]; then count=$plain_sessions; fi
  local limit=$((count + 100))
  port=$(free_port)
  echo_port=$(free_port)
  while [[ $echo_port == "$port" ]]; do echo_port=$(free_port); done
  # shellcheck disable=SC2046  # the argument lists hold no spaces
  "$tether" server --listen "127.0.0.1:$port" --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --reset-key "$work/reset.key" --control-socket none \
    --allow "127.0.0.1:$echo_port" \
    --max-sessions "$limit" --max-sessions-per-source "$limit" --max-suspended-sessions "$limit" \
    --max-pending-connections "$limit" --max-pending-per-source "$limit" \
    $(server_arguments "$mechanism") >"$work/server-$mechanism-$index.log" 2>&1 &
  server_pid=$!
  for _ in {1..200}; do
    ss -Htln "sport = :$port" | grep -q . && break
    sleep 0.05
  done
  local status=0
  # shellcheck disable=SC2046
  "$generator" --server "127.0.0.1:$port" --fingerprint "$fingerprint" --server-pid "$server_pid" \
    --reauthenticate "$window" --settle "$settle" --sessions "$count" --probes 1 \
    --window "$connect_window" --probe-realtime \
    --echo-port "$echo_port" --establish-timeout 120 \
    $(client_arguments "$mechanism") \
    >"$work/generator-$mechanism-$index.log" 2>&1 || status=$?
  stop_server
  local result
  result=$(sed -n 's/^RESULT //p' "$work/generator-$mechanism-$index.log" | tail -n 1)
  if [[ -z $result ]]; then result='{}'; fi
  jq -c --arg mechanism "$mechanism" --argjson status "$status" --argjson index "$index" \
    --argjson count "$count" \
    '. + {bench_mechanism: $mechanism, exit_status: $status, repetition: $index, sessions_wanted: $count}' \
    <<<"$result" >>"$work/results"
  if ((status != 0)); then
    echo "run $index of $mechanism failed (exit $status):" \
      "$(jq -c '{stopped, first_failure, sessions, sessions_closed, fatal,
                 probe_failure: .probes[0].failure, probe_out_of_order: .probes[0].out_of_order}' \
        <<<"$result")" >&2
    grep -v 'suspended: transport-closed' "$work/generator-$mechanism-$index.log" | tail -n 3 >&2
    return 1
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
echo "tether $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$sessions sessions ($plain_sessions with PLAIN) + 1 probe per run, --max-reauth $lifetime, window ${window} s after" \
  "${settle} s, $repeat repetitions; load average before: $load_before"
failures=0
IFS=, read -r -a mechanism_list <<<"$mechanisms"
mechanism_list=(off "${mechanism_list[@]}")
for ((index = 1; index <= repeat; ++index)); do  # interleaved, so that noise spreads over all
  for mechanism in "${mechanism_list[@]}"; do
    run "$mechanism" "$index" || failures=$((failures + 1))
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "| mechanism | sessions | re-auths (runs) | re-auths/s | latency p50 / p99 (ms) | server CPU per re-auth, raw / marginal (us) | re-auths/s per server core | probe gap max / p99 (ms) | probe round trip max / p99 (ms) | probe re-auths |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for mechanism in "${mechanism_list[@]}"; do
  # The marginal CPU of a run: its server CPU rate minus the same repetition's baseline rate, per
  # re-authentication.
  jq -rs --arg mechanism "$mechanism" '
    def median: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
    def fixed(digits): if . == null then "-" else (. * pow(10; digits) | round) / pow(10; digits) | tostring end;
    (map(select(.bench_mechanism == "off" and .exit_status == 0)) | map({key: (.repetition | tostring), value: .}) | from_entries) as $baseline
    | map(select(.bench_mechanism == $mechanism and .exit_status == 0)) as $runs
    | ($runs | map(
        if .reauthentications > 0 and $baseline[.repetition | tostring] != null then
          1e6 * (.server_cpu_seconds / .window_seconds
                 - $baseline[.repetition | tostring].server_cpu_seconds / $baseline[.repetition | tostring].window_seconds)
              / .reauthentications_per_second
        else null end)) as $marginal
    | ($marginal | median) as $m
    | "| \($mechanism) | \($runs | map(.sessions_wanted) | median // "-") | \($runs | map(.reauthentications) | add // 0) (\($runs | length))"
      + " | \($runs | map(.reauthentications_per_second) | median | fixed(0))"
      + " | \($runs | map(.latency_p50_ms) | median | fixed(2)) / \($runs | map(.latency_p99_ms) | median | fixed(2))"
      + " | \($runs | map(.server_cpu_per_reauthentication_us) | median | fixed(0)) / \($m | fixed(0))"
      + " | \(if $m == null or $m <= 0 then null else 1e6 / $m end | fixed(0))"
      + " | \($runs | map(.probe_gap_max_ms) | median | fixed(2)) / \($runs | map(.probe_gap_p99_ms) | median | fixed(2))"
      + " | \($runs | map(.probe_round_trip_max_ms) | median | fixed(2)) / \($runs | map(.probe_round_trip_p99_ms) | median | fixed(2))"
      + " | \($runs | map(.probes[0].reauthentications) | add // 0) |"' \
    "$work/results"
done
echo
echo "Every run's probe gap max / p99, round trip max / p99, sender late max (ms), by repetition:"
jq -rs 'def f: if . == null then "-" else (. * 100 | round) / 100 | tostring end;
  group_by(.bench_mechanism)[] | "  \(.[0].bench_mechanism): "
  + (sort_by(.repetition) | map("\(.probe_gap_max_ms | f) / \(.probe_gap_p99_ms | f), \(.probe_round_trip_max_ms | f) / \(.probe_round_trip_p99_ms | f), \(.probe_send_late_max_ms | f)") | join("; "))' \
  "$work/results"
echo
echo "Medians over the runs ($started to $(date -u +%FT%TZ)); load average before $load_before," \
  "after $load_after. The machine is shared: these figures are noisy. Latency is the client's" \
  "(exchange start to result). Raw CPU is all of the server's CPU in the window per" \
  "re-authentication; marginal subtracts the baseline run's CPU rate (heartbeats, the probe's" \
  "1,000 records/s), and re-auths/s per core is 1 / marginal. Gaps are between consecutive" \
  "echoed records' arrivals (the \"off\" row is the baseline); a sender late by X ms (its timer, on" \
  "a loaded machine) makes a gap of X ms that no re-authentication caused: the round trip (send" \
  "stamp to echo) is the path's own delay."
if ((failures > 0)); then
  echo "$failures runs failed (not in the table)" >&2
  exit 1
fi
if $check; then
  jq -se '
    all(.exit_status == 0 and .sessions == .sessions_wanted and .sessions_closed == 0
        and (if .bench_mechanism == "off" then .reauthentications == 0
             else .reauthentications > 0 and .sessions_reauthenticated == .sessions_wanted
                  and .probes[0].reauthentications > 0 end))' \
    "$work/results" >/dev/null || {
    echo "check failed:" >&2
    jq -c '{bench_mechanism, exit_status, sessions, sessions_closed, reauthentications, sessions_reauthenticated, probe: .probes[0].reauthentications, first_failure, stopped}' "$work/results" >&2
    exit 1
  }
  echo "ok: every session re-authenticated in every run with a lifetime, none failed, none in the baseline"
fi
