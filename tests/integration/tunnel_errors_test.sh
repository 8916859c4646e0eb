#!/usr/bin/env bash
# Integration test of the failure cases a script must be able to act on: wrong server fingerprint
# (exit 3), a target not on the allow list (clear log line), server down at start (the client keeps
# trying and connects once it is up), and a server killed and restarted (its sessions are gone: the
# client gets the stateless reset, says so, and starts a new session; with --exit-on-session-loss it
# exits 4). Usage: tunnel_errors_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
other_port=$(free_port)     # a target off the server's allow list
local_port=$(free_port)     # -L to target_port (echo)
off_list_port=$(free_port)  # -L to other_port
exit_port=$(free_port)      # the --exit-on-session-loss client's -L
wrong_port=$(free_port)     # the wrong-fingerprint client's -L

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
other=$("$tether" keygen --out "$work/other" | awk '/^fingerprint/ {print $2}')
start_server() {
  spawn "$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 \
    >>"$work/server.log" 2>&1
  server_pid=$spawned
  disown "$server_pid" 2>/dev/null || true  # no "Killed" line from bash when the test kills it
}
spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat

# 1. Server down at start: the client keeps trying and establishes once the server is up.
spawn "$tether" client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" --known-servers "$work/known" \
  -L $local_port:127.0.0.1:$target_port -L $off_list_port:127.0.0.1:$other_port \
  --heartbeat-interval 500 >"$work/client.log" 2>&1
client_pid=$spawned
wait_for 5 grep -q "cannot connect" "$work/client.log" || fail "client did not report the server down"
start_server
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish once the server was up"
echo "ok: server down at start, then established"

# 2. Traffic flows (echo), and a target not on the allow list is refused with a clear line.
reply=$(printf 'ping\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == ping ]] || fail "echo through the tunnel returned '$reply'"
printf 'x\n' | socat -t 2 - TCP:127.0.0.1:$off_list_port >/dev/null 2>&1 || true
wait_for 5 grep -q "not allowed" "$work/client.log" || fail "no 'not allowed' line for a target off the allow list"
echo "ok: echo through -L; target off the allow list refused"

# 3. Server killed and restarted: the session is gone; the client learns it from the stateless reset,
#    says so, and starts a new session (by default), through which traffic flows again.
kill -KILL $server_pid
start_server
wait_for 10 grep -q "unknown-session" "$work/client.log" || fail "client did not report unknown-session"
wait_for 5 grep -q "starting a new session" "$work/client.log" || fail "client did not start a new session"
established_twice() { (($(grep -c "established" "$work/client.log") >= 2)); }
wait_for 10 established_twice || fail "no second session established"
reply=$(printf 'again\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == again ]] || fail "echo through the new session returned '$reply'"
echo "ok: server restart -> stateless reset reported -> new session -> traffic flows"

# 3b. The same with --exit-on-session-loss: exit status 4, for scripts and supervisors.
kill -KILL $client_pid
wait $client_pid 2>/dev/null || true  # reaped here, or bash reports it "Killed" into the next log
spawn "$tether" client --server 127.0.0.1:$server_port --known-servers "$work/known" --exit-on-session-loss \
  -L $exit_port:127.0.0.1:$target_port --heartbeat-interval 500 >"$work/client2.log" 2>&1
client_pid=$spawned
wait_for 10 grep -q "established" "$work/client2.log" || fail "second client (known server, no --fingerprint) did not establish"
kill -KILL $server_pid
start_server
client_exited() { ! kill -0 "$client_pid"; }
wait_for 20 client_exited || fail "client still runs 20 s after the server restart"
set +e
wait $client_pid
status=$?
set -e
[[ $status == 4 ]] || fail "client exit status $status after the server restart, expected 4"
grep -q "unknown-session" "$work/client2.log" || fail "client did not report unknown-session"
echo "ok: --exit-on-session-loss -> exit 4 (unknown-session); known_servers pin reused without --fingerprint"

# 4. Wrong fingerprint: a clear error and exit 3.
set +e
timeout 20 "$tether" client --server 127.0.0.1:$server_port --fingerprint "$other" --known-servers "$work/known2" \
  -L $wrong_port:127.0.0.1:$target_port >"$work/wrong.log" 2>&1
status=$?
set -e
[[ $status == 3 ]] || fail "wrong fingerprint: exit status $status, expected 3"
grep -q "does not match" "$work/wrong.log" || fail "wrong fingerprint: no clear message"
echo "ok: wrong fingerprint -> exit 3: $(grep -o 'server certificate.*' "$work/wrong.log" | head -1)"
