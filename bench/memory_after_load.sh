#!/usr/bin/env bash
# Memory of a tether server and client under load and after it: RSS (from /proc) before, at the peak
# and some seconds after the load ends.
#
# Usage: bench/memory_after_load.sh [--tether PATH] [--mode echo|sink] [--connections N] [--settle S]
#   --tether PATH     the tether binary (default: build/gcc/apps/tether/tether, relative to the repository)
#   --mode echo       (default) N tunnelled connections to a local echo server, opened together, each
#                     sends 16 KiB and reads it back, then all are closed
#   --mode sink       N tunnelled connections to a local server that accepts and never reads; each
#                     writes until it stalls (the kernel and the tunnel are full), then all are closed
#   --connections N   default 2000 (echo), 100 (sink)
#   --settle S        seconds to wait after the load before the last measurement (default 5)
#
# Contract:
# - A measurement, not a test: it prints one line per process with RSS in MiB idle (established, no
#   stream), loaded (all connections open, data moved), and after (S seconds after every connection
#   closed), plus (loaded - idle) / N in KiB per connection; and "RESULT key=value" lines that a test
#   can read. It exits non-zero only when something does not come up.
# - Starts, on free loopback ports, `tether server --auth none` (plain TLS, pinned fingerprint), a client
#   with one -L to a python3 echo or sink server, and a python3 driver; all are stopped and the temp dir
#   removed on exit. Raises the soft descriptor limit to the hard one (each side needs about N + 50).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tether="$repo/build/gcc/apps/tether/tether"
mode=echo
connections=''
settle=5
while (($#)); do
  case $1 in
    --tether) tether=${2:?--tether needs a path}; shift 2 ;;
    --mode) mode=${2:?--mode needs echo or sink}; shift 2 ;;
    --connections) connections=${2:?--connections needs a number}; shift 2 ;;
    --settle) settle=${2:?--settle needs seconds}; shift 2 ;;
    -h | --help) sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ $mode == echo || $mode == sink ]] || { echo "--mode must be echo or sink" >&2; exit 2; }
if [[ -z $connections ]]; then connections=$([[ $mode == echo ]] && echo 2000 || echo 100); fi
[[ -x $tether ]] || { echo "tether binary not found: $tether" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-memory.XXXXXX")
pids=()
cleanup() {
  local status=$? pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $status != 0 ]]; then
    for log in "$work"/*.log; do echo "--- $log"; tail -n 20 "$log"; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a loopback port no socket uses (10000-31999)
  local port
  for _ in {1..200}; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    ss -Htan "( sport = :$port or dport = :$port )" | grep -q . && continue
    grep -qx "$port" "$work/ports" 2>/dev/null && continue
    echo "$port" >>"$work/ports"
    echo "$port"
    return 0
  done
  return 1
}
wait_listening() {  # wait_listening PORT: up to 10 s
  for _ in {1..200}; do
    ss -Htln "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

server_port=$(free_port)
target_port=$(free_port)
local_port=$(free_port)

# The target: an echo server, or a sink that accepts and never reads (python3, one thread, selectors).
cat >"$work/target.py" <<'EOF'
import selectors, socket, sys
mode, port = sys.argv[1], int(sys.argv[2])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(4096)
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
held = []
while True:
    for key, _ in selector.select():
        if key.fileobj is listener:
            connection, _ = listener.accept()
            if mode == "sink":
                held.append(connection)  # never read
            else:
                connection.setblocking(False)
                selector.register(connection, selectors.EVENT_READ)
            continue
        connection = key.fileobj
        try:
            data = connection.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:
            selector.unregister(connection)
            connection.close()
            continue
        connection.setblocking(True)
        connection.sendall(data)
        connection.setblocking(False)
EOF

# The driver: opens N connections to the -L port, moves data, signals "loaded", waits for "close",
# closes them all and signals "closed".
cat >"$work/driver.py" <<'EOF'
import socket, sys, time
mode, port, count, control = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def say(word):
    with open(control + "." + word, "w"):
        pass
def wait(word):
    while True:
        try:
            open(control + "." + word).close()
            return
        except FileNotFoundError:
            time.sleep(0.05)
connections = []
for index in range(count):
    connection = socket.create_connection(("127.0.0.1", port))
    connections.append(connection)
payload = b"x" * 16384
if mode == "echo":
    for connection in connections:
        connection.sendall(payload)
    for connection in connections:
        connection.settimeout(30)
        received = 0
        while received < len(payload):
            chunk = connection.recv(65536)
            if not chunk:
                sys.exit("echo connection closed early")
            received += len(chunk)
else:
    # Write into every connection until none accepts more for 2 s (everything on the way is full).
    for connection in connections:
        connection.setblocking(False)
    chunk = b"y" * 65536
    last_progress = time.monotonic()
    total = 0
    while time.monotonic() - last_progress < 2:
        moved = False
        for connection in connections:
            try:
                sent = connection.send(chunk)
                total += sent
                moved = moved or sent > 0
            except (BlockingIOError, InterruptedError):
                pass
        if moved:
            last_progress = time.monotonic()
        else:
            time.sleep(0.05)
    print(f"written {total} bytes", flush=True)
say("loaded")
wait("close")
for connection in connections:
    connection.close()
say("closed")
wait("exit")
EOF

python3 "$work/target.py" "$mode" "$target_port" >"$work/target.log" 2>&1 &
pids+=("$!")
"$tether" keygen --out "$work/identity" >"$work/keygen.log" 2>&1
fingerprint=$(awk '/^fingerprint/ {print $2}' "$work/keygen.log")
"$tether" server --listen "127.0.0.1:$server_port" --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow "127.0.0.1:$target_port" --auth none >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_listening "$server_port"
"$tether" client --server "127.0.0.1:$server_port" --fingerprint "$fingerprint" \
  --known-servers "$work/known_servers" -L "$local_port:127.0.0.1:$target_port" >"$work/client.log" 2>&1 &
client_pid=$!
pids+=("$client_pid")
wait_listening "$local_port"
wait_listening "$target_port"
for _ in {1..200}; do grep -q established "$work/client.log" && break; sleep 0.05; done
sleep 1
idle_server=$(rss_mib "$server_pid") idle_client=$(rss_mib "$client_pid")

python3 "$work/driver.py" "$mode" "$local_port" "$connections" "$work/control" >"$work/driver.log" 2>&1 &
driver_pid=$!
pids+=("$driver_pid")
peak_server=$idle_server peak_client=$idle_client
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (a > b ? a : b)}'; }
until [[ -e $work/control.loaded ]]; do
  kill -0 "$driver_pid" 2>/dev/null || { echo "the driver failed:" >&2; tail -n 20 "$work/driver.log" "$work/client.log" >&2; exit 1; }
  peak_server=$(max "$peak_server" "$(rss_mib "$server_pid")")
  peak_client=$(max "$peak_client" "$(rss_mib "$client_pid")")
  sleep 0.1
done
sleep 1  # let the last bytes settle in the buffers
loaded_server=$(rss_mib "$server_pid") loaded_client=$(rss_mib "$client_pid")
peak_server=$(max "$peak_server" "$loaded_server")
peak_client=$(max "$peak_client" "$loaded_client")
touch "$work/control.close"
until [[ -e $work/control.closed ]]; do sleep 0.05; done
sleep "$settle"
after_server=$(rss_mib "$server_pid") after_client=$(rss_mib "$client_pid")
touch "$work/control.exit"
kill -0 "$server_pid" && kill -0 "$client_pid" || { echo "a tether process died" >&2; exit 1; }

echo "tether memory, mode $mode, $connections connections ($(cat "$work/driver.log" | tr '\n' ' '))"
printf '%-8s %10s %10s %10s %10s %18s\n' process "idle MiB" "peak MiB" "loaded MiB" "after MiB" "KiB/connection"
for side in server client; do
  idle_var=idle_$side peak_var=peak_$side loaded_var=loaded_$side after_var=after_$side
  per=$(awk -v l="${!loaded_var}" -v i="${!idle_var}" -v n="$connections" 'BEGIN {printf "%.0f", (l - i) * 1024 / n}')
  printf '%-8s %10s %10s %10s %10s %18s\n' "$side" "${!idle_var}" "${!peak_var}" "${!loaded_var}" "${!after_var}" "$per"
  echo "RESULT ${side}_idle=${!idle_var} ${side}_peak=${!peak_var} ${side}_loaded=${!loaded_var} ${side}_after=${!after_var} ${side}_per_connection_kib=$per"
done
