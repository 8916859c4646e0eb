#!/usr/bin/env bash
# Integration test of what a client does when the server stops (SIGTERM: Abort(shutdown,
# transient) to every session): by default it starts a new session, which is established once the
# server is back and carries traffic; with --exit-on-session-loss it exits 4. Both read from
# --log-format json (one JSON object per line) and `tether status --json`, not from log prose.
# Usage: session_outcomes_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
local_port=$(free_port)  # the default client's -L (echo)
exit_port=$(free_port)   # the --exit-on-session-loss client's -L

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
start_server() {
  spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
    --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
    --allow 127.0.0.1:$target_port --auth none --heartbeat-interval 500 --control-socket none \
    >>"$work/server.log" 2>&1
  server_pid=$spawned
}
# events FILE FILTER: the JSON events of FILE that FILTER (a jq condition) selects, one per line.
events() { jq -c "select($2)" "$1"; }
# has_event FILE FILTER: succeeds once FILE holds such an event.
has_event() { [[ -n $(events "$1" "$2") ]]; }
spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
start_server

client_args=(--server "127.0.0.1:$server_port" --fingerprint "$fingerprint" --known-servers "$work/known"
  --heartbeat-interval 500)
spawn "$tether" --log-format json client "${client_args[@]}" -L $local_port:127.0.0.1:$target_port \
  --control-socket "$work/client.sock" >"$work/client.log" 2>&1
client_pid=$spawned
spawn "$tether" --log-format json client "${client_args[@]}" -L $exit_port:127.0.0.1:$target_port \
  --exit-on-session-loss --control-socket none >"$work/exiting.log" 2>&1
exiting_pid=$spawned
wait_for 10 has_event "$work/client.log" '.event == "established"' || fail "client not established"
wait_for 10 has_event "$work/exiting.log" '.event == "established"' ||
  fail "--exit-on-session-loss client not established"
first=$(events "$work/client.log" '.event == "established"' | jq -r .session)
status_session() { "$tether" status --socket "$work/client.sock" --json | jq -r '.[0].sessions[0].id'; }
[[ $(status_session) == "$first" ]] || fail "tether status shows $(status_session), the log $first"
reply=$(printf 'ping\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == ping ]] || fail "echo through the tunnel returned '$reply'"
echo "ok: two clients established (session $first)"

# The server stops: every session ends with Abort(shutdown, transient).
kill -TERM "$server_pid"
closed='.event == "closed" and .reason == "shutdown" and .by_peer == true and .transient == true'
wait_for 10 has_event "$work/client.log" "$closed" || fail "client did not report closed (shutdown, transient, by peer)"
wait_for 10 has_event "$work/exiting.log" "$closed" || fail "--exit-on-session-loss client did not report the close"

# (b) --exit-on-session-loss: exit status 4.
exited() { ! kill -0 "$exiting_pid"; }
wait_for 10 exited || fail "--exit-on-session-loss client still runs 10 s after the server stopped"
set +e
wait "$exiting_pid"
status=$?
set -e
[[ $status == 4 ]] || fail "--exit-on-session-loss client exit status $status after the server stopped, expected 4"
has_event "$work/exiting.log" '.event == "outcome" and .new_session == false and .exit_code == 4' ||
  fail "no outcome event with exit code 4"
echo "ok: server SIGTERM -> --exit-on-session-loss client exits 4"

# (a) By default: a new session, established once the server is back, through which traffic flows.
has_event "$work/client.log" '.event == "outcome" and .new_session == true' ||
  fail "client did not start a new session"
kill -0 "$client_pid" || fail "the default client exited after the server stopped"
wait "$server_pid" 2>/dev/null || true
start_server
second_session() {
  local id
  id=$(events "$work/client.log" ".event == \"established\" and .session != \"$first\"" | jq -r .session)
  [[ -n $id ]] && [[ $(status_session) == "$id" ]] &&
    [[ $("$tether" status --socket "$work/client.sock" --json | jq -r '.[0].sessions[0].state') == open ]]
}
wait_for 15 second_session || fail "no new session established after the server came back"
reply=$(printf 'again\n' | socat -t 2 - TCP:127.0.0.1:$local_port)
[[ $reply == again ]] || fail "echo through the new session returned '$reply'"
echo "ok: server SIGTERM -> the default client starts a new session -> traffic flows"

# Every line of the JSON logs is one JSON object.
for log in "$work/client.log" "$work/exiting.log" "$work/server.log"; do
  jq -e 'type == "object" and has("time") and has("level")' "$log" >/dev/null ||
    fail "$(basename "$log") holds a line that is not a JSON object with time and level"
done
echo "ok: every log line is a JSON object"
