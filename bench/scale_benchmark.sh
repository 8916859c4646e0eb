#!/usr/bin/env bash
# The scale benchmark: a `tether server --auth none` and bench/load_generator, which opens idle TLS
# sessions (heartbeats only) up to each level in turn and measures, at each, the server's RSS per
# idle session, its CPU over an idle window, an active session's echo p50/p99 and the sessions
# established per second. A measurement, not a test (see bench/README.md).
#
# Usage: bench/scale_benchmark.sh [--tether PATH] [--generator PATH] [--levels 0,1000,10000]
#                                 [--idle-window S] [--pings N] [--json FILE] [-- GENERATOR ARGS]
#   --tether PATH     default build/gcc/apps/tether/tether
#   --generator PATH  default build/gcc/bench/load_generator
#   --levels LIST     idle session counts, ascending (default 0,1000)
#   --idle-window S   seconds of idle CPU measurement per level (default 30)
#   --pings N         active round trips per level (default 1000, 20 ms apart, within 60 s)
#   --json FILE       also write the generator's results there
#   --keep-log        print where the server's log is and keep the temp dir
# Everything after -- goes to the generator (e.g. --window 128 --sessions-per-source 10000).
#
# The server's descriptor limit is raised to 1,048,576 (fs.nr_open) when run as root, else to the hard
# limit; its session and admission limits are set above the largest level. It listens on a free
# loopback port; the generator's echo listener gets another. Everything is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tether="$repo/build/gcc/apps/tether/tether"
generator="$repo/build/gcc/bench/load_generator"
levels=0,1000
idle_window=30
pings=1000
json=''
keep_log=false
while (($#)); do
  case $1 in
    --tether) tether=${2:?}; shift 2 ;;
    --generator) generator=${2:?}; shift 2 ;;
    --levels) levels=${2:?}; shift 2 ;;
    --idle-window) idle_window=${2:?}; shift 2 ;;
    --pings) pings=${2:?}; shift 2 ;;
    --json) json=${2:?}; shift 2 ;;
    --keep-log) keep_log=true; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -x $tether ]] || { echo "tether binary not found: $tether" >&2; exit 2; }
[[ -x $generator ]] || { echo "load_generator not found: $generator" >&2; exit 2; }

largest=${levels##*,}
limit=$((largest * 2 + 1000))

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-scale.XXXXXX")
server_pid=''
cleanup() {
  local status=$?
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ $status != 0 ]]; then echo "--- server log (last 20 lines)"; tail -n 20 "$work/server.log" || true; fi
  if $keep_log; then echo "server log kept in $work/server.log"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a loopback port no socket uses (10000-31999: below the ephemeral range)
  local port
  for _ in {1..200}; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    ss -Htan "( sport = :$port or dport = :$port )" | grep -q . && continue
    echo "$port"
    return 0
  done
  return 1
}
server_port=$(free_port)
echo_port=$(free_port)
while [[ $echo_port == "$server_port" ]]; do echo_port=$(free_port); done

"$tether" keygen --out "$work/identity" >"$work/keygen.log" 2>&1
fingerprint=$(awk '/^fingerprint/ {print $2}' "$work/keygen.log")

# The server's descriptors: as root up to fs.nr_open, else the hard limit (the server raises its
# soft limit to the hard one itself and logs the figure).
if [[ $(id -u) == 0 ]]; then
  if ! ulimit -Hn "$(cat /proc/sys/fs/nr_open)" 2>/dev/null; then
    echo "cannot raise the descriptor hard limit above $(ulimit -Hn) (no CAP_SYS_RESOURCE?)"
  fi
  ulimit -n "$(ulimit -Hn)"
fi
"$tether" server --listen "127.0.0.1:$server_port" --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --auth none --allow "127.0.0.1:$echo_port" \
  --heartbeat-interval 30000 --control-socket none \
  --max-sessions "$limit" --max-sessions-per-source "$limit" --max-suspended-sessions "$limit" \
  --max-pending-connections "$limit" --max-pending-per-source "$limit" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in {1..200}; do
  ss -Htln "sport = :$server_port" | grep -q . && break
  sleep 0.05
done
grep -m1 'file-descriptor limit' "$work/server.log" || true
echo "server $server_pid on 127.0.0.1:$server_port, commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"

arguments=(--server "127.0.0.1:$server_port" --fingerprint "$fingerprint" --server-pid "$server_pid"
  --echo-port "$echo_port" --levels "$levels" --idle-window "$idle_window" --pings "$pings")
[[ -n $json ]] && arguments+=(--json "$json")
"$generator" "${arguments[@]}" "$@"
