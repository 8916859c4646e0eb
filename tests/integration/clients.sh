# Helpers for the tests that run many short-lived clients against one server and read their JSON
# logs (authentication_test.sh, mtls_test.sh). Source after common.sh; the test sets $tether,
# $fingerprint and $target_port.

events() { jq -c "select($2)" "$1"; }  # events FILE FILTER: the JSON log lines FILTER selects
has_event() { [[ -n $(events "$1" "$2") ]]; }
client() {  # client LOG PORT ARGS...: a client with -L LOCAL_PORT; sets $client_pid and $local_port
  local log=$1 port=$2
  shift 2
  local_port=$(free_port)
  # shellcheck disable=SC2154  # set by the test that sources this file
  spawn "$tether" --log-format json client --server 127.0.0.1:$port --fingerprint "$fingerprint" \
    --known-servers "$work/known" -L $local_port:127.0.0.1:$target_port --heartbeat-interval 500 \
    "$@" >"$log" 2>&1
  client_pid=$spawned
}
expect_exit() {  # expect_exit CODE LOG: the client exits with CODE within 10 s
  local status=0 waited=0
  while kill -0 "$client_pid" 2>/dev/null && ((waited < 100)); do nap 0.1; waited=$((waited + 1)); done
  kill -0 "$client_pid" 2>/dev/null && fail "client still running ($2)"
  wait "$client_pid" || status=$?
  [[ $status == "$1" ]] || fail "client exited $status, expected $1 ($(tail -n 5 "$2"))"
}
echo_through() { printf '%s\n' "$1" | socat -t 2 - TCP:127.0.0.1:$local_port; }
