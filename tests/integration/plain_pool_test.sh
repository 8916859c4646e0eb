#!/usr/bin/env bash
# Integration test of PLAIN's password check on the server's worker pool, through the real binaries:
# while the server derives the PBKDF2 of a user with 500,000 iterations (a PLAIN login that costs
# about a second of CPU), echoes through another session on the same server complete, and they
# complete before that login does (ordering, not timing: on the old code the event loop was busy
# with the PBKDF2 and nothing else moved until the login was done); the slow login then succeeds,
# and a wrong password for the slow user is refused (exit 9) with a log line naming the user and
# the reason. Usage: plain_pool_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
for tool in socat jq; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
users=$work/secrets/users
printf 'correct horse\n' | "$tether" passwd --users "$users" alice 2>>"$work/passwd.log"
printf 'slow horse\n' | "$tether" passwd --users "$users" --iterations 500000 slow \
  2>>"$work/passwd.log"

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn "$tether" -v --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_port --users "$users" --auth SCRAM-SHA-256-PLUS,PLAIN \
  --heartbeat-interval 500 >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"

# 1. alice's session (PLAIN, cheap) is up and echoes.
TETHER_PASSWORD='correct horse' client "$work/alice.log" $server_port --user alice \
  --auth-mechanism PLAIN
alice_port=$local_port
wait_for 10 has_event "$work/alice.log" '.event == "established"' ||
  fail "alice did not establish ($(tail -n 3 "$work/alice.log"))"
[[ $(echo_through warm) == warm ]] || fail "echo through alice's session failed"

# 2. slow's PLAIN login: once the server has handed its PBKDF2 to the pool, alice's echoes go
#    through, all of them before slow's session is established.
TETHER_PASSWORD='slow horse' client "$work/slow.log" $server_port --user slow --auth-mechanism PLAIN
wait_for 10 grep -q "verifying credentials on the worker pool" "$work/server.log" ||
  fail "the server did not hand the PLAIN check to its worker pool"
local_port=$alice_port
for round in 1 2 3; do
  [[ $(echo_through "during $round") == "during $round" ]] || fail "echo $round during the login failed"
done
if has_event "$work/slow.log" '.event == "established"' ||
  grep -q "authenticated slow with PLAIN" "$work/server.log"; then
  fail "the slow PLAIN login finished before the other session's echoes (event loop blocked?)"
fi
wait_for 30 has_event "$work/slow.log" '.event == "established"' ||
  fail "slow did not establish ($(tail -n 3 "$work/slow.log"))"
grep -q "authenticated slow with PLAIN" "$work/server.log" || fail "slow's principal not logged"
echo "ok: echoes through another session complete while a PLAIN login is verified, before it"

# 3. A wrong password for slow: refused after the same work, exit 9, and one log line with why.
TETHER_PASSWORD='wrong horse' client "$work/wrong.log" $server_port --user slow \
  --auth-mechanism PLAIN
expect_exit 9 "$work/wrong.log"
wait_for 5 grep -q "refused authentication from 127.0.0.1.*mechanism PLAIN, user slow, auth-failed" \
  "$work/server.log" || fail "no refusal line naming the mechanism, the user and the reason"
echo "ok: a wrong PLAIN password is refused (exit 9) with a log line saying why"
echo "PASS"
