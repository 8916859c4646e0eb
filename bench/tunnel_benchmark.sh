#!/usr/bin/env bash
# Tunnel benchmark: raw TCP vs stunnel4 vs ssh -L vs tether -L, side by side, on loopback, TLS on.
#
# Usage: bench/tunnel_benchmark.sh [--tether PATH] [--baseline PATH] [--paths LIST] [--repeat N] [--quick]
#   --tether PATH    the tether binary (default: build/gcc/apps/tether/tether, relative to the repository)
#   --baseline PATH  another tether binary measured side by side as path "baseline" (before/after)
#   --paths LIST     comma-separated subset of raw,relay,stunnel,ssh,tether,baseline (default: all but
#                    baseline, plus baseline when given); goals needing a missing path are skipped
#   --repeat N       repetitions of every measurement; the table shows the median (default 3, or
#                    $TETHER_BENCH_REPEAT; 1 with --quick unless given)
#   --quick          short runs (a smoke test of the script, not figures to quote)
#
# Contract:
# - A benchmark, not a test: it prints a table and marks the goals met/missed, and exits 0 whether or not
#   the goals are met. It exits non-zero (with a message and the failing process's log) only when a path
#   does not come up or a measurement fails.
# - Installs what it needs from Debian if missing (apt-get, with sudo when not root). Note that installing
#   redis-server or openssh-server may start their system services; this script never uses, stops or
#   reconfigures them: everything it starts listens on free high ports on 127.0.0.1 only.
# - Starts its own redis-server (--save '' --appendonly no) and iperf3 -s, then, for each path, a forwarder
#   whose local ports lead to both:
#     raw      the backends themselves (no forwarder)
#     relay    two plain socat relays in a chain (no TLS, no framing): the same three loopback hops as
#              every tunnel below, so the floor that any two-process user-space tunnel starts from
#     stunnel  stunnel4 client + stunnel4 server, TLS 1.3, the client verifying the server's certificate
#     ssh      a private sshd (own config, host key and client key in a temp dir) and ssh -N -L, default
#              ciphers; the negotiated cipher is reported
#     tether   tether server --auth none + tether client -L, TLS 1.3 with a pinned fingerprint
#     baseline the same with the --baseline binary
# - Measures, per path: iperf3 single-stream throughput (receiver side; the control and data connections
#   both go through the forward), redis-benchmark PING_MBULK with 1 client (requests/s and p50 latency),
#   redis-benchmark SET with 50 clients and pipeline 16 (requests/s). Each repetition runs every
#   measurement on every path in turn (raw, stunnel, ssh, tether, raw, ...) so that machine noise hits all.
# - Every process it started is stopped and the temp dir removed on exit, including Ctrl-C and failure.
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tether="$repo/build/gcc/apps/tether/tether"
repeat=${TETHER_BENCH_REPEAT:-}
quick=0
baseline=''
path_list=''

usage() { sed -n '4,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --tether) tether=${2:?--tether needs a path}; shift 2 ;;
    --baseline) baseline=${2:?--baseline needs a path}; shift 2 ;;
    --paths) path_list=${2:?--paths needs a list}; shift 2 ;;
    --repeat) repeat=${2:?--repeat needs a number}; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ -z $repeat ]]; then repeat=$((quick ? 1 : 3)); fi
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "--repeat must be a positive integer, got '$repeat'" >&2; exit 2; }
[[ -x $tether ]] || { echo "tether binary not found or not executable: $tether (build it, or pass --tether PATH)" >&2; exit 2; }
tether=$(realpath "$tether")
if [[ -n $baseline ]]; then
  [[ -x $baseline ]] || { echo "baseline binary not found or not executable: $baseline" >&2; exit 2; }
  baseline=$(realpath "$baseline")
fi

if ((quick)); then
  iperf_seconds=1 ping_requests=2000 set_requests=50000
else
  iperf_seconds=5 ping_requests=20000 set_requests=400000
fi
declare -A path_title=([raw]="raw TCP" [relay]="socat x2" [stunnel]="stunnel4" [ssh]="ssh -L"
  [tether]="tether -L" [baseline]="baseline")
if [[ -n $path_list ]]; then
  IFS=, read -r -a paths <<<"$path_list"
else
  paths=(raw relay stunnel ssh tether)
  [[ -z $baseline ]] || paths+=(baseline)
fi
for path in "${paths[@]}"; do
  [[ -n ${path_title[$path]:-} ]] || { echo "unknown path '$path' in --paths" >&2; exit 2; }
done
[[ " ${paths[*]} " != *" baseline "* || -n $baseline ]] || { echo "path baseline needs --baseline PATH" >&2; exit 2; }
declare -A redis_port iperf_port  # per path: the local port leading to each backend
redis_backend='' iperf_backend='' # the ports redis-server and iperf3 -s listen on
startup_timeout=15                # seconds a process may take to come up

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------- cleanup
work=$(mktemp -d -t tether-bench.XXXXXX)
pids=()  # every background process we started, in start order
cleanup() {
  local status=$? pid index child
  trap - EXIT INT TERM
  # Include the direct children of what we started (sshd's per-connection processes).
  for pid in "${pids[@]}"; do
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do pids+=("$child"); done
  done
  # Newest first (clients before their servers), politely, then force whatever is left.
  for ((index = ${#pids[@]} - 1; index >= 0; index--)); do kill -TERM "${pids[index]}" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

fail() {  # fail MESSAGE [LOGFILE...]: explain, show the logs, exit (cleanup runs)
  log "FAILED: $1"
  shift
  local file
  for file in "$@"; do
    [[ -f $file ]] && { log "--- ${file#"$work"/} (last 30 lines)"; tail -n 30 "$file" >&2; }
  done
  exit 1
}

# ----------------------------------------------------------------------------------------- dependencies
install_dependencies() {
  local -A package_of=([iperf3]=iperf3 [redis-server]=redis-server [redis-benchmark]=redis-tools
    [redis-cli]=redis-tools [stunnel4]=stunnel4 [/usr/sbin/sshd]=openssh-server [ssh]=openssh-client
    [ssh-keygen]=openssh-client [socat]=socat [jq]=jq [openssl]=openssl [ss]=iproute2 [timeout]=coreutils)
  local -A missing=()
  local command
  for command in "${!package_of[@]}"; do
    command -v "$command" >/dev/null 2>&1 || missing[${package_of[$command]}]=1
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  log "installing from Debian: ${!missing[*]}"
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${!missing[@]}")
  if ! "${install[@]}" >"$work/apt.log" 2>&1; then
    "${sudo[@]}" apt-get update >>"$work/apt.log" 2>&1 || true
    "${install[@]}" >>"$work/apt.log" 2>&1 || fail "apt-get install ${!missing[*]}" "$work/apt.log"
  fi
}

# ------------------------------------------------------------------------------------- ports and waiting
declare -A handed_out=()
free_port() {  # free_port VAR...: set each VAR to a loopback port no socket uses, not yet handed out
  local _name _port
  for _name in "$@"; do
    for _ in $(seq 1000); do
      _port=$((30000 + RANDOM % 30000))
      [[ -z ${handed_out[$_port]:-} && -z $(ss -Htan "( sport = :$_port or dport = :$_port )") ]] && break
      _port=
    done
    [[ -n $_port ]] || fail "no free port found"
    handed_out[$_port]=1
    printf -v "$_name" '%s' "$_port"
  done
}

wait_listening() {  # wait_listening NAME PID PORT LOG: bounded wait until something listens on PORT
  local name=$1 pid=$2 port=$3 logfile=$4 deadline=$((SECONDS + startup_timeout))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || fail "$name exited during startup" "$logfile"
    [[ -n $(ss -Htln "( sport = :$port )") ]] && return 0
    sleep 0.05
  done
  fail "$name did not listen on 127.0.0.1:$port within ${startup_timeout}s" "$logfile"
}

wait_redis_ping() {  # wait_redis_ping PATH LOG...: bounded wait until PING through the path answers PONG
  local path=$1 deadline=$((SECONDS + startup_timeout))
  shift
  while ((SECONDS < deadline)); do
    [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "${redis_port[$path]}" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  fail "${path_title[$path]}: redis PING through 127.0.0.1:${redis_port[$path]} got no PONG within ${startup_timeout}s" "$@"
}

start() {  # start LOG COMMAND...: run in the background, remember its pid in $started
  local logfile=$1
  shift
  "$@" >"$logfile" 2>&1 </dev/null &
  started=$!
  pids+=("$started")
}

tls_suite() {  # tls_suite PORT: the TLS 1.3 suite a default OpenSSL client negotiates with PORT
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -tls1_3 </dev/null 2>/dev/null |
    awk '/^New, / {print $NF; exit}' || true
}

# ------------------------------------------------------------------------------------------- backends
start_backends() {
  free_port redis_backend iperf_backend
  start "$work/redis.log" redis-server --bind 127.0.0.1 --port "$redis_backend" --save '' --appendonly no \
    --daemonize no --protected-mode yes --dir "$work"
  wait_listening redis-server "$started" "$redis_backend" "$work/redis.log"
  start "$work/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p "$iperf_backend"
  wait_listening "iperf3 -s" "$started" "$iperf_backend" "$work/iperf3-server.log"
}

# ------------------------------------------------------------------------------ one setup per path
setup_raw() {
  redis_port[raw]=$redis_backend
  iperf_port[raw]=$iperf_backend
  wait_redis_ping raw "$work/redis.log"
  detail[raw]="direct connections"
}

socat_relay() {  # socat_relay LISTEN TARGET: a plaintext socat relay from port LISTEN to port TARGET
  start "$work/relay-$1.log" socat -b 262144 "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork,nodelay" \
    "TCP:127.0.0.1:$2,nodelay"
  wait_listening "socat relay" "$started" "$1" "$work/relay-$1.log"
}

setup_relay() {
  local hop_redis hop_iperf
  free_port hop_redis hop_iperf 'redis_port[relay]' 'iperf_port[relay]'
  # Entry port -> socat -> hop port -> socat -> backend, for each backend.
  socat_relay "$hop_redis" "$redis_backend"
  socat_relay "${redis_port[relay]}" "$hop_redis"
  socat_relay "$hop_iperf" "$iperf_backend"
  socat_relay "${iperf_port[relay]}" "$hop_iperf"
  wait_redis_ping relay "$work/relay-$hop_redis.log" "$work/relay-${redis_port[relay]}.log"
  detail[relay]="plaintext, socat -b 262144, a process per connection"
}

setup_stunnel() {
  local dir=$work/stunnel server_redis server_iperf
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/certificate.pem" >"$dir/openssl.log" 2>&1 ||
    fail "openssl could not make the stunnel certificate" "$dir/openssl.log"
  free_port server_redis server_iperf 'redis_port[stunnel]' 'iperf_port[stunnel]'
  cat >"$dir/server.conf" <<EOF
foreground = yes
pid =
debug = notice
sslVersionMin = TLSv1.3
cert = $dir/certificate.pem
key = $dir/key.pem
[redis]
accept = 127.0.0.1:$server_redis
connect = 127.0.0.1:$redis_backend
[iperf]
accept = 127.0.0.1:$server_iperf
connect = 127.0.0.1:$iperf_backend
EOF
  cat >"$dir/client.conf" <<EOF
foreground = yes
pid =
debug = notice
client = yes
sslVersionMin = TLSv1.3
verifyPeer = yes
CAfile = $dir/certificate.pem
[redis]
accept = 127.0.0.1:${redis_port[stunnel]}
connect = 127.0.0.1:$server_redis
[iperf]
accept = 127.0.0.1:${iperf_port[stunnel]}
connect = 127.0.0.1:$server_iperf
EOF
  start "$dir/server.log" stunnel4 "$dir/server.conf"
  wait_listening "stunnel4 server" "$started" "$server_iperf" "$dir/server.log"
  start "$dir/client.log" stunnel4 "$dir/client.conf"
  wait_listening "stunnel4 client" "$started" "${iperf_port[stunnel]}" "$dir/client.log"
  wait_redis_ping stunnel "$dir/server.log" "$dir/client.log"
  detail[stunnel]="TLS 1.3 $(tls_suite "$server_redis")"
}

setup_ssh() {
  local dir=$work/ssh user sshd_port
  mkdir -p "$dir"
  user=$(id -un)
  free_port sshd_port 'redis_port[ssh]' 'iperf_port[ssh]'
  ssh-keygen -q -t ed25519 -N '' -C tether-bench-host -f "$dir/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C tether-bench-client -f "$dir/client_ed25519"
  cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
  cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $sshd_port
HostKey $dir/host_ed25519
PidFile none
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
LogLevel INFO
EOF
  # The privilege-separation directory Debian's unit file would create (root sshd refuses to start without).
  if [[ $(id -u) -eq 0 ]]; then mkdir -p /run/sshd; fi
  /usr/sbin/sshd -t -f "$dir/sshd_config" >"$dir/sshd.log" 2>&1 || fail "sshd rejects its config" "$dir/sshd.log"
  start "$dir/sshd.log" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
  wait_listening sshd "$started" "$sshd_port" "$dir/sshd.log"
  start "$dir/ssh.out" ssh -N -F /dev/null -v -E "$dir/ssh.log" -p "$sshd_port" -i "$dir/client_ed25519" \
    -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ExitOnForwardFailure=yes \
    -L "127.0.0.1:${redis_port[ssh]}:127.0.0.1:$redis_backend" \
    -L "127.0.0.1:${iperf_port[ssh]}:127.0.0.1:$iperf_backend" "$user@127.0.0.1"
  wait_listening "ssh -L" "$started" "${iperf_port[ssh]}" "$dir/ssh.log"
  wait_redis_ping ssh "$dir/sshd.log" "$dir/ssh.log"
  local cipher
  cipher=$(awk '/kex: client->server cipher:/ {print $5, "MAC", $7; exit}' "$dir/ssh.log")
  detail[ssh]="${cipher:-cipher unknown}"
}

setup_tether() { tether_pair tether "$tether"; }
setup_baseline() { tether_pair baseline "$baseline"; }

tether_pair() {  # tether_pair PATH BINARY: a tether server and a client with -L to both backends
  local path=$1 binary=$2 dir=$work/$1 server_port fingerprint
  mkdir -p "$dir"
  free_port server_port "redis_port[$path]" "iperf_port[$path]"
  "$binary" keygen --out "$dir/identity" >"$dir/keygen.log" 2>&1 || fail "tether keygen failed" "$dir/keygen.log"
  fingerprint=$(awk '/^fingerprint/ {print $2}' "$dir/keygen.log")
  [[ $fingerprint == sha256:* ]] || fail "tether keygen printed no fingerprint" "$dir/keygen.log"
  start "$dir/server.log" "$binary" server --listen "127.0.0.1:$server_port" \
    --cert "$dir/identity/certificate.pem" --key "$dir/identity/key.pem" --allow '127.0.0.1:*' --auth none
  server_pid[$path]=$started
  wait_listening "tether server" "$started" "$server_port" "$dir/server.log"
  detail[$path]="TLS 1.3 $(tls_suite "$server_port")"
  start "$dir/client.log" "$binary" client --server "127.0.0.1:$server_port" --fingerprint "$fingerprint" \
    --known-servers "$dir/known_servers" \
    -L "${redis_port[$path]}:127.0.0.1:$redis_backend" -L "${iperf_port[$path]}:127.0.0.1:$iperf_backend"
  client_pid[$path]=$started
  wait_listening "tether client" "$started" "${iperf_port[$path]}" "$dir/client.log"
  wait_redis_ping "$path" "$dir/server.log" "$dir/client.log"
}

# ------------------------------------------------------------------------ one function per measurement
measure_iperf() {  # measure_iperf PATH: prints receiver-side Gbit/s
  local path=$1 out=$work/iperf3-client.json gbits
  if ! timeout $((iperf_seconds + 30)) iperf3 -c 127.0.0.1 -p "${iperf_port[$path]}" -t "$iperf_seconds" \
    --connect-timeout 5000 --json >"$out" 2>&1; then
    fail "iperf3 through ${path_title[$path]} failed: $(jq -r '.error // empty' "$out" 2>/dev/null)" "$out"
  fi
  gbits=$(jq -r '.end.sum_received.bits_per_second / 1e7 | round / 100' "$out")
  [[ $gbits =~ ^[0-9.eE+-]+$ ]] || fail "iperf3 through ${path_title[$path]}: no receiver figure" "$out"
  echo "$gbits"
}

redis_bench_csv() {  # redis_bench_csv PATH TEST ARGS...: prints the CSV row for TEST
  local path=$1 test=$2 out=$work/redis-benchmark.out row
  shift 2
  if ! timeout 300 redis-benchmark -h 127.0.0.1 -p "${redis_port[$path]}" --csv "$@" >"$out" 2>&1; then
    fail "redis-benchmark $* through ${path_title[$path]} failed" "$out"
  fi
  row=$(grep "^\"$test\"," "$out" | tr -d '"') || fail "redis-benchmark printed no $test row" "$out"
  echo "$row"
}

measure_ping() {  # measure_ping PATH: prints "requests/s p50-microseconds" (PING_MBULK, 1 client)
  local row
  row=$(redis_bench_csv "$1" PING_MBULK -c 1 -n "$ping_requests" -t ping_mbulk)
  # Columns: test,rps,avg_latency_ms,min_latency_ms,p50_latency_ms,p95_latency_ms,p99_latency_ms,max_latency_ms
  awk -F, '{printf "%.0f %.0f\n", $2, $5 * 1000}' <<<"$row"
}

measure_set() {  # measure_set PATH: prints requests/s (SET, 50 clients, pipeline 16)
  local row
  row=$(redis_bench_csv "$1" SET -c 50 -P 16 -n "$set_requests" -t set)
  awk -F, '{printf "%.0f\n", $2}' <<<"$row"
}

# --------------------------------------------------------------------------------------------- report
declare -A samples=()  # "path metric" -> space-separated values
record() { samples["$1 $2"]+="$3 "; }
median() {  # median PATH METRIC
  tr ' ' '\n' <<<"${samples["$1 $2"]:-}" | grep . | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

print_table() {
  local path
  echo
  echo "Tunnel benchmark: loopback, $(nproc) cores, median of $repeat (iperf3 -t $iperf_seconds;" \
    "PING_MBULK -c 1 -n $ping_requests; SET -c 50 -P 16 -n $set_requests)"
  printf '%-10s | %14s | %14s | %12s | %16s | %s\n' path "iperf3 Gbit/s" "PING req/s" "PING p50 us" \
    "SET c50P16 req/s" "transport"
  printf '%s\n' "-----------+----------------+----------------+--------------+------------------+---------------------------------"
  for path in "${paths[@]}"; do
    printf '%-10s | %14.2f | %14.0f | %12.0f | %16.0f | %s\n' "${path_title[$path]}" \
      "$(median "$path" gbits)" "$(median "$path" ping_rps)" "$(median "$path" ping_p50)" \
      "$(median "$path" set_rps)" "${detail[$path]}"
  done
  echo
  echo "samples (in run order):"
  for path in "${paths[@]}"; do
    printf '  %-10s gbit/s: %s| ping rps: %s| p50 us: %s| set rps: %s\n' "${path_title[$path]}" \
      "${samples["$path gbits"]}" "${samples["$path ping_rps"]}" "${samples["$path ping_p50"]}" \
      "${samples["$path set_rps"]}"
  done
  echo
  printf '%-38s | %8s | %8s | %s\n' goal ratio target result
  printf '%s\n' "---------------------------------------+----------+----------+-------"
  goal "tether throughput / stunnel4" "$(median tether gbits)" "$(median stunnel gbits)" ">=" 2.5
  goal "tether throughput / ssh -L" "$(median tether gbits)" "$(median ssh gbits)" ">=" 2.5
  goal "tether PING p50 / raw TCP PING p50" "$(median tether ping_p50)" "$(median raw ping_p50)" "<=" 2
  goal "tether SET req/s / ssh -L SET req/s" "$(median tether set_rps)" "$(median ssh set_rps)" ">=" 3
  echo
  echo "context (no goals): the two-relay floor and before/after"
  ratio "socat x2 throughput / raw TCP" "$(median relay gbits)" "$(median raw gbits)"
  ratio "socat x2 PING p50 / raw TCP" "$(median relay ping_p50)" "$(median raw ping_p50)"
  ratio "tether throughput / socat x2" "$(median tether gbits)" "$(median relay gbits)"
  ratio "tether PING p50 / socat x2" "$(median tether ping_p50)" "$(median relay ping_p50)"
  ratio "tether throughput / baseline" "$(median tether gbits)" "$(median baseline gbits)"
  ratio "tether PING p50 / baseline" "$(median tether ping_p50)" "$(median baseline ping_p50)"
  ratio "tether SET req/s / baseline" "$(median tether set_rps)" "$(median baseline set_rps)"
}

ratio() {  # ratio TITLE NUMERATOR DENOMINATOR: printed only when both paths were measured
  [[ $2 != nan && $3 != nan ]] || return 0
  awk -v title="$1" -v a="$2" -v b="$3" 'BEGIN { if (b + 0 != 0) printf "%-38s | %7.2fx\n", title, a / b }'
}

goal() {  # goal TITLE NUMERATOR DENOMINATOR >=|<= TARGET
  if [[ $2 == nan || $3 == nan ]]; then
    printf '%-38s | %8s | %2s %4sx | %s\n' "$1" n/a "$4" "$5" "skipped (path not measured)"
    return 0
  fi
  awk -v title="$1" -v a="$2" -v b="$3" -v op="$4" -v target="$5" 'BEGIN {
    if (b + 0 == 0) { printf "%-38s | %8s | %2s %4sx | %s\n", title, "n/a", op, target, "missed (no baseline)"; exit }
    ratio = a / b
    met = (op == ">=") ? (ratio >= target) : (ratio <= target)
    printf "%-38s | %7.2fx | %2s %4sx | %s\n", title, ratio, op, target, met ? "met" : "MISSED"
  }'
}

# ----------------------------------------------------------------------------------------------- main
install_dependencies
declare -A detail=() server_pid=() client_pid=()
log "work dir $work; tether $tether"
start_backends
for path in "${paths[@]}"; do
  log "setting up ${path_title[$path]}"
  "setup_$path"
done
for path in tether baseline; do
  [[ -z ${server_pid[$path]:-} ]] || log "${path_title[$path]}: server pid ${server_pid[$path]}, client pid ${client_pid[$path]}"
done

for ((rep = 1; rep <= repeat; rep++)); do
  for path in "${paths[@]}"; do
    value=$(measure_iperf "$path")
    record "$path" gbits "$value"
    log "rep $rep/$repeat iperf3      ${path_title[$path]}: $value Gbit/s"
  done
  for path in "${paths[@]}"; do
    value=$(measure_ping "$path")
    read -r rps p50 <<<"$value"
    record "$path" ping_rps "$rps"
    record "$path" ping_p50 "$p50"
    log "rep $rep/$repeat PING c1     ${path_title[$path]}: $rps req/s, p50 $p50 us"
  done
  for path in "${paths[@]}"; do
    value=$(measure_set "$path")
    record "$path" set_rps "$value"
    log "rep $rep/$repeat SET c50 P16 ${path_title[$path]}: $value req/s"
  done
done
print_table
