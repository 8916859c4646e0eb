#!/usr/bin/env bash
# Integration test of the failure cases a script must be able to act on: wrong server fingerprint
# (exit 3), a target not on the allow list (clear log line), server down at start (the client keeps
# trying and connects once it is up), and a server killed and restarted (its sessions are gone: the
# client gets the stateless reset, says so, and starts a new session; with --exit-on-session-loss it
# exits 4). It reads the logs as --log-format json writes them (one JSON object per line), not as
# prose. Usage: tunnel_errors_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

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
# events FILE FILTER: the JSON log lines of FILE that FILTER (a jq condition) selects.
events() { jq -c "select($2)" "$1"; }
has_event() { [[ -n $(events "$1" "$2") ]]; }
start_server() {
  spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
    --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 \
    >>"$work/server.log" 2>&1
  server_pid=$spawned
  disown "$server_pid" 2>/dev/null || true  # no "Killed" line from bash when the test kills it
}
spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat

# 1. Server down at start: the client keeps trying and establishes once the server is up.
spawn "$tether" --log-format json client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" -L $local_port:127.0.0.1:$target_port -L $off_list_port:127.0.0.1:$other_port \
  --heartbeat-interval 500 >"$work/client.log" 2>&1
client_pid=$spawned
wait_for 5 has_event "$work/client.log" '.event == "connect-failed" and .error == "refused"' ||
  fail "client did not report the server down (connect-failed, refused)"
start_server
wait_for 10 has_event "$work/client.log" '.event == "established"' ||
  fail "client did not establish once the server was up"
echo "ok: server down at start, then established"

# 2. Traffic flows (echo), and a target not on the allow list is refused with a clear line.
reply=$(printf 'ping\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == ping ]] || fail "echo through the tunnel returned '$reply'"
printf 'x\n' | socat -t 2 - TCP:127.0.0.1:$off_list_port >/dev/null 2>&1 || true
wait_for 5 has_event "$work/client.log" '.message // "" | contains("not allowed")' ||
  fail "no 'not allowed' line for a target off the allow list"
echo "ok: echo through -L; target off the allow list refused"

# 3. Server killed and restarted: the session is gone; the client learns it from the stateless reset,
#    says so, and starts a new session (by default), through which traffic flows again.
kill -KILL $server_pid
start_server
reset='.event == "closed" and .reason == "unknown-session" and .by_peer == true'
wait_for 10 has_event "$work/client.log" "$reset" || fail "client did not report unknown-session"
wait_for 5 has_event "$work/client.log" '.event == "outcome" and .new_session == true' ||
  fail "client did not start a new session"
established_twice() {
  (($(events "$work/client.log" '.event == "established"' | jq -r .session | sort -u | wc -l) >= 2))
}
wait_for 10 established_twice || fail "no second session established"
reply=$(printf 'again\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == again ]] || fail "echo through the new session returned '$reply'"
echo "ok: server restart -> stateless reset reported -> new session -> traffic flows"

# 3b. The same with --exit-on-session-loss: exit status 4, for scripts and supervisors.
kill -KILL $client_pid
wait $client_pid 2>/dev/null || true  # reaped here, or bash reports it "Killed" into the next log
spawn "$tether" --log-format json client --server 127.0.0.1:$server_port --known-servers "$work/known" \
  --exit-on-session-loss -L $exit_port:127.0.0.1:$target_port --heartbeat-interval 500 >"$work/client2.log" 2>&1
client_pid=$spawned
wait_for 10 has_event "$work/client2.log" '.event == "established"' ||
  fail "second client (known server, no --fingerprint) did not establish"
kill -KILL $server_pid
start_server
client_exited() { ! kill -0 "$client_pid"; }
wait_for 20 client_exited || fail "client still runs 20 s after the server restart"
set +e
wait $client_pid
status=$?
set -e
[[ $status == 4 ]] || fail "client exit status $status after the server restart, expected 4"
has_event "$work/client2.log" "$reset" || fail "client did not report unknown-session"
has_event "$work/client2.log" '.event == "outcome" and .exit_code == 4' || fail "no outcome event with exit code 4"
echo "ok: --exit-on-session-loss -> exit 4 (unknown-session); known_servers pin reused without --fingerprint"

# 4. Wrong fingerprint: a clear error and exit 3.
set +e
timeout 20 "$tether" --log-format json client --server 127.0.0.1:$server_port --fingerprint "$other" --known-servers "$work/known2" \
  -L $wrong_port:127.0.0.1:$target_port >"$work/wrong.log" 2>&1
status=$?
set -e
[[ $status == 3 ]] || fail "wrong fingerprint: exit status $status, expected 3"
has_event "$work/wrong.log" '.event == "outcome" and .error == "fingerprint-mismatch" and .exit_code == 3' ||
  fail "wrong fingerprint: no outcome event (fingerprint-mismatch, exit 3)"
message=$(events "$work/wrong.log" '.level == "error" and (.message // "" | contains("does not match"))' | jq -r .message)
[[ -n $message ]] || fail "wrong fingerprint: no clear message"
echo "ok: wrong fingerprint -> exit 3: $message"
