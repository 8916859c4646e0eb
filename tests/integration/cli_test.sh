#!/usr/bin/env bash
# The command line: an unknown subcommand is named as such (exit 2); logging options (-v, -q,
# --log-level) work before or after the subcommand; -q and --log-level warn leave no info lines in
# the JSON log; `tether status --json` prints a JSON document with nothing running (exit 0).
# Usage: cli_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
code=0
"$tether" bogus 2>"$work/bogus.log" || code=$?
[[ $code == 2 ]] || fail "an unknown subcommand exited $code, expected 2"
grep -q "unknown subcommand 'bogus'" "$work/bogus.log" || fail "not named: $(cat "$work/bogus.log")"
code=0
"$tether" status --no-such-flag 2>/dev/null || code=$?
[[ $code == 2 ]] || fail "an unknown option exited $code, expected 2"

export XDG_RUNTIME_DIR=$work/runtime
mkdir -m 0700 "$work/runtime"
code=0
"$tether" status --json -v >"$work/status.json" 2>/dev/null || code=$?
[[ $code == 1 ]] || fail "status --json with nothing running exited $code, expected 1"
jq -e 'type == "array" and length == 0' "$work/status.json" >/dev/null ||
  fail "status --json with nothing running printed no JSON array: $(cat "$work/status.json")"
out=$("$tether" -q status --json 2>/dev/null || true)
jq -e . <<<"$out" >/dev/null || fail "-q before the subcommand refused"

server_port=$(free_port)
# level_lines LOG: the levels of the JSON log lines, sorted and unique.
levels() { jq -r .level "$1" | sort -u | tr '\n' ' '; }
for quiet in "-q" "--log-level warn"; do
  # shellcheck disable=SC2086
  timeout 2 "$tether" --log-format json client --server "127.0.0.1:$server_port" --plain-insecure \
    -L "$(free_port):127.0.0.1:9" $quiet >"$work/quiet.log" 2>&1 || true
  ! grep -q '"level":"info"' "$work/quiet.log" || fail "$quiet: info lines logged: $(levels "$work/quiet.log")"
done
timeout 2 "$tether" --log-format json client --server "127.0.0.1:$server_port" --plain-insecure \
  -L "$(free_port):127.0.0.1:9" -v >"$work/verbose.log" 2>&1 || true
grep -q '"level":"debug"' "$work/verbose.log" || fail "-v after the subcommand logged no debug lines"
echo "cli: ok"
