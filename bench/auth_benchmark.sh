#!/usr/bin/env bash
# The authentication benchmark, through the real `tether server`: for each mechanism (--auth none,
# SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN, OAUTHBEARER with an RS256 token, EXTERNAL with an mTLS
# client certificate) a fresh server and bench/load_generator --establish, which opens sessions one
# after another (--concurrency at once), each a new client with a full TLS handshake, closed once
# established. Reported per mechanism, medians over the repetitions: the server's CPU per session
# (utime + stime of the server process from /proc, over the measured sessions: TLS handshake,
# authentication, close), the establishment latency p50 / p99 (connect to Welcome), and sessions per
# second per server core (1 / the server's CPU per session). The generator's own CPU (the client's
# PBKDF2, signing nothing: tokens are made beforehand) is reported apart. A measurement, not a test
# (see bench/README.md).
#
# Credentials are made here at run time: a users file with `tether passwd` (--iterations, default
# 4096), an RSA-2048 key, its JWKS and an RS256 token signed with openssl, and a P-256 CA and client
# certificate made with openssl.
#
# Usage: bench/auth_benchmark.sh [--tether PATH] [--generator PATH] [--sessions N] [--repeat R]
#                                [--concurrency C] [--iterations I] [--mechanisms LIST] [--keep-log]
#   --tether PATH      default build/gcc/apps/tether/tether
#   --generator PATH   default build/gcc/bench/load_generator
#   --sessions N       measured sessions per run (default 200; 5 more warm up first)
#   --repeat R         runs per mechanism, interleaved (default 3); the table shows medians
#   --concurrency C    sessions under way at once (default 1: latency without queueing)
#   --iterations I     PBKDF2 iterations of the SCRAM verifier (default 4096)
#   --mechanisms LIST  comma-separated subset of: none, SCRAM-SHA-256-PLUS, SCRAM-SHA-256-PLUS/kept
#                      (one client for all sessions, which keeps the salted password: PBKDF2 once),
#                      SCRAM-SHA-256, PLAIN, OAUTHBEARER, EXTERNAL (default all)
#   --check            a smoke test, not a measurement: exit 0 only when every session of every run
#                      was established and authenticated as the expected principal, and the server
#                      logged each authentication
#   --keep-log         keep the temp dir (server logs, credentials) and print where it is
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tether="$repo/build/gcc/apps/tether/tether"
generator="$repo/build/gcc/bench/load_generator"
sessions=200
warmup=5
repeat=3
concurrency=1
iterations=4096
mechanisms=none,SCRAM-SHA-256-PLUS,SCRAM-SHA-256-PLUS/kept,SCRAM-SHA-256,PLAIN,OAUTHBEARER,EXTERNAL
check=false
keep_log=false
while (($#)); do
  case $1 in
    --tether) tether=${2:?}; shift 2 ;;
    --generator) generator=${2:?}; shift 2 ;;
    --sessions) sessions=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    --concurrency) concurrency=${2:?}; shift 2 ;;
    --iterations) iterations=${2:?}; shift 2 ;;
    --mechanisms) mechanisms=${2:?}; shift 2 ;;
    --check) check=true; shift ;;
    --keep-log) keep_log=true; shift ;;
    -h | --help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $tether ]] || { echo "tether binary not found: $tether" >&2; exit 2; }
[[ -x $generator ]] || { echo "load_generator not found: $generator" >&2; exit 2; }
for tool in openssl jq xxd base64; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

# shellcheck source=bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
bench_workdir tether-auth-bench

# ---- Credentials, made now
make_bench_credentials "$iterations"

# The server's and the generator's arguments for a mechanism.
server_arguments() {
  case $1 in
    none) echo --auth none ;;
    SCRAM-SHA-256-PLUS | SCRAM-SHA-256 | PLAIN) echo --auth "$1" --users "$work/users" ;;
    SCRAM-SHA-256-PLUS/kept) echo --auth SCRAM-SHA-256-PLUS --users "$work/users" ;;
    OAUTHBEARER)
      echo --auth OAUTHBEARER --jwks "$work/jwks.json" --audience tether-bench --issuer bench-issuer
      ;;
    EXTERNAL) echo --auth EXTERNAL --client-ca "$work/ca.pem" ;;
    *) echo "unknown mechanism: $1" >&2; return 2 ;;
  esac
}
client_arguments() {
  case $1 in
    none) ;;
    SCRAM-SHA-256-PLUS | SCRAM-SHA-256 | PLAIN)
      echo --user bench --password-file "$work/password" --auth-mechanism "$1" --expect-principal bench
      ;;
    SCRAM-SHA-256-PLUS/kept)
      echo --user bench --password-file "$work/password" --auth-mechanism SCRAM-SHA-256-PLUS \
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
  local mechanism=$1 index=$2 port name
  name=${mechanism//\//-}  # for file names
  port=$(free_port)
  # shellcheck disable=SC2046  # the argument lists hold no spaces
  "$tether" server --listen "127.0.0.1:$port" --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --reset-key "$work/reset.key" --control-socket none \
    $(server_arguments "$mechanism") >"$work/server-$name-$index.log" 2>&1 &
  server_pid=$!
  for _ in {1..200}; do
    ss -Htln "sport = :$port" | grep -q . && break
    sleep 0.05
  done
  local status=0
  # shellcheck disable=SC2046
  "$generator" --server "127.0.0.1:$port" --fingerprint "$fingerprint" --server-pid "$server_pid" \
    --establish "$sessions" --warmup "$warmup" --concurrency "$concurrency" \
    $(client_arguments "$mechanism") \
    >"$work/generator-$name-$index.log" 2>&1 || status=$?
  stop_server
  if $check && [[ $mechanism != none ]]; then
    # The server's side of it: one "authenticated" line per session, warm-up included.
    local logged
    logged=$(grep -c "authenticated bench with ${mechanism%/kept}\$" "$work/server-$name-$index.log" || true)
    if ((logged != sessions + warmup)); then
      echo "the server logged $logged authentications with $mechanism, not $((sessions + warmup))" >&2
      status=1
    fi
  fi
  local result
  result=$(sed -n 's/^RESULT //p' "$work/generator-$name-$index.log" | tail -n 1)
  if [[ -z $result ]]; then result='{}'; fi
  jq -c --arg mechanism "$mechanism" --argjson status "$status" \
    '. + {bench_mechanism: $mechanism, exit_status: $status}' <<<"$result" >>"$work/results"
  if ((status != 0)); then
    echo "run $index of $mechanism failed (exit $status):" >&2
    tail -n 5 "$work/generator-$name-$index.log" >&2
    tail -n 5 "$work/server-$name-$index.log" >&2
    return 1
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%FT%TZ)
echo "tether $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$sessions sessions per run, concurrency $concurrency, $repeat runs per mechanism," \
  "SCRAM at $iterations iterations; load average before: $load_before"
failures=0
IFS=, read -r -a mechanism_list <<<"$mechanisms"
for ((index = 1; index <= repeat; ++index)); do  # interleaved, so that noise spreads over all
  for mechanism in "${mechanism_list[@]}"; do
    run "$mechanism" "$index" || failures=$((failures + 1))
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "| mechanism | sessions | server CPU per session (us) | latency p50 / p99 (ms) | sessions/s per server core | generator CPU per session (us) |"
echo "|---|---:|---:|---:|---:|---:|"
for mechanism in "${mechanism_list[@]}"; do
  jq -rs --arg mechanism "$mechanism" '
    def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
    def fixed(digits): if . == null then "-" else (. * pow(10; digits) | round) / pow(10; digits) | tostring end;
    map(select(.bench_mechanism == $mechanism and .exit_status == 0)) as $runs
    | "| \($mechanism) | \($runs | map(.sessions) | add // 0) (\($runs | length) runs)"
      + " | \($runs | map(.server_cpu_per_session_us) | median | fixed(0))"
      + " | \($runs | map(.latency_p50_ms) | median | fixed(2)) / \($runs | map(.latency_p99_ms) | median | fixed(2))"
      + " | \($runs | map(.sessions_per_server_cpu_second) | median | fixed(0))"
      + " | \($runs | map(.generator_cpu_per_session_us) | median | fixed(0)) |"' "$work/results"
done
echo
echo "Medians over the runs ($started to $(date -u +%FT%TZ)); load average before $load_before," \
  "after $load_after. The machine is shared: these figures are noisy. Server CPU per session covers" \
  "the TLS 1.3 handshake, the exchange, the Welcome and the graceful close; sessions/s per core is" \
  "1 / that CPU."
if ((failures > 0)); then
  echo "$failures runs failed (not in the table)" >&2
  exit 1
fi
if $check; then
  jq -se --argjson sessions "$sessions" \
    'all(.exit_status == 0 and .sessions == $sessions and .authenticated == $sessions)' \
    "$work/results" >/dev/null || { echo "not every session authenticated" >&2; exit 1; }
  echo "ok: every session of every run was established and authenticated"
fi
