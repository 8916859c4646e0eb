# shellcheck shell=bash
# The plumbing every integration test shares (lib.sh and netns.sh build on it). Source it after
# `set -euo pipefail` and after the checks that skip the test (exit 77). It provides:
#   $work                a temporary directory: removed at exit, kept on failure (without its files
#                        over 10 MB) or always with KEEP=1;
#   spawn COMMAND...     runs COMMAND in the background and adds it to `pids` (sets $spawned); a
#                        process started otherwise is added with `pids+=("$!")`;
#   an EXIT trap         on failure prints the last 50 lines of each $work/*.log (all of them with
#                        SHOW_LOGS=1 on success), runs the functions listed in cleanup_before_kill,
#                        ends the processes in pids (SIGTERM newest first, so clients go before
#                        their server, SIGKILL 0.3 s later), runs the functions listed in
#                        cleanup_after_kill, and exits with the test's status (0 pass, 77 skipped:
#                        ctest's SKIP_RETURN_CODE, anything else fail; SIGINT and SIGTERM make it
#                        130);
#   fail MESSAGE...      prints "FAIL: MESSAGE" and exits 1 (the trap prints the logs);
#   print_logs [LINES]   prints each $work/*.log (all of it, or its last LINES lines);
#   free_port            prints a loopback TCP port below the ephemeral range (10000-31999) that no
#                        socket uses, never the same twice in one test (even from $(free_port));
#   listening PORT       succeeds when a TCP socket listens on PORT;
#   wait_for SECONDS COMMAND...  runs COMMAND (stderr discarded) every $wait_for_interval seconds
#                        (0.05) until it succeeds; fails once SECONDS (a whole number) have passed;
#   nap SECONDS          sleeps without a fork (fractions allowed).
# Environment: SHOW_LOGS=1 prints every $work/*.log whole when the test passes; KEEP=1 keeps $work.

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-it.XXXXXX")
pids=()
cleanup_before_kill=()
cleanup_after_kill=()
wait_for_interval=0.05
common_failed=0
exec {common_stdout}>&1 {common_stderr}>&2

spawn() {  # spawn COMMAND...: run in the background, remembered for the cleanup; sets $spawned
  # Without the copies of the test's stdout and stderr kept for the trap (ctest waits for its output
  # pipe to close: a process holding it would make ctest wait too).
  "$@" {common_stdout}>&- {common_stderr}>&- &
  spawned=$!
  pids+=("$spawned")
}

print_logs() {  # print_logs [LINES]: the logs in $work (all, or their last LINES lines)
  local log
  for log in "$work"/*.log; do
    [[ -f $log ]] || continue
    echo "--- $(basename "$log")${1:+ (last $1 lines)}"
    if [[ -n ${1:-} ]]; then tail -n "$1" "$log"; else cat "$log"; fi
  done
}

common_cleanup() {
  local status=$? hook index pid
  set +e
  # Back to the test's own output: a signal may arrive inside a redirected call (as in
  # `wait_for ... >/dev/null`).
  exec 1>&"$common_stdout" 2>&"$common_stderr"
  # The logs as they are when the test ends, before the processes log their shutdown.
  if [[ $status != 0 && $status != 77 ]]; then
    [[ $common_failed == 1 ]] || echo "FAIL: exited with status $status"
    print_logs 50
  elif [[ ${SHOW_LOGS:-0} == 1 && $status == 0 ]]; then
    print_logs
  fi
  for hook in "${cleanup_before_kill[@]}"; do "$hook"; done
  if ((${#pids[@]} > 0)); then
    for ((index = ${#pids[@]} - 1; index >= 0; index--)); do kill "${pids[index]}" 2>/dev/null; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  fi
  wait 2>/dev/null
  for hook in "${cleanup_after_kill[@]}"; do "$hook"; done
  if [[ $status != 0 && $status != 77 ]]; then
    # Keep the logs and small files, not the bulk data (unless KEEP=1).
    [[ ${KEEP:-0} == 1 ]] || find "$work" -type f -size +10M -delete
    echo "files kept in $work"
  elif [[ ${KEEP:-0} == 1 ]]; then
    echo "files kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap common_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*"
  common_failed=1
  exit 1
}

free_port() {
  local port _
  for _ in {1..200}; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    # Taken ports are recorded in a file: $(free_port) runs in a subshell, whose variables are lost.
    grep -qx "$port" "$work/ports-taken" 2>/dev/null && continue
    ss -Htan "( sport = :$port or dport = :$port )" | grep -q . && continue
    echo "$port" >>"$work/ports-taken"
    echo "$port"
    return 0
  done
  echo "FAIL: no free port found" >&2
  return 1
}

listening() { ss -Htln "sport = :$1" | grep -q .; }

exec {common_nap_fd}<> <(:)  # a pipe nobody writes to: `read -t` on it is a fork-free sleep
nap() { read -r -t "$1" -u "$common_nap_fd" _ || true; }

wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((${EPOCHREALTIME/./} + $1 * 1000000))
  shift
  until "$@" 2>/dev/null; do
    ((${EPOCHREALTIME/./} < deadline)) || return 1
    nap "$wait_for_interval"
  done
}
