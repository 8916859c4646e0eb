#!/usr/bin/env bash
# Integration test of revocation through the real binaries (issue #15, "Revocation"):
# `tether admin revoke --user` ends that user's session within 100 ms of the command's return (the
# client ends with reason revoked and exit 9) while another user's session stays up; `tether passwd
# --disable` then `tether admin reload` cuts a SCRAM user's session, and so does SIGHUP (which no
# longer stops the server); `tether admin revoke --session PREFIX` ends one session; a jti added to
# the --token-deny-list file ends its token's session and a new login with it is refused; another
# uid cannot use the admin socket even when the socket's mode would let it (root and runuser needed
# for that case, else it is left to the unit tests). Usage: revocation_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
for tool in socat python3 jq; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
users=$work/secrets/users
for user in alice bob dave; do
  printf '%s-password\n' $user | "$tether" passwd --users "$users" $user 2>>"$work/passwd.log"
done

# An HS256 key in a JWKS, and tokens with a jti signed with it (python3's hmac).
tokens="$(dirname "$0")/test_tokens.py"
python3 "$tokens" jwks "$work/secrets"
for n in 1 2; do
  python3 "$tokens" token "$work/secrets" token-$n \
    '{"sub": "carol", "aud": "tether-test", "iss": "test-issuer", "exp_in": 3600, "jti": "jti-carol-'$n'"}'
done
printf '# revoked tokens, one jti a line\n' >"$work/secrets/denied"
chmod 600 "$work/secrets/"*

# The control socket lives in a directory other users may enter, so that the uid check (not the
# file mode) is what refuses them in the last case.
admin_dir=$work/admin
mkdir -m 755 "$admin_dir"
chmod 711 "$work"
socket=$admin_dir/server.sock

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_port --users "$users" --jwks "$work/secrets/jwks.json" \
  --audience tether-test --issuer test-issuer --token-deny-list "$work/secrets/denied" \
  --heartbeat-interval 500 --control-socket "$socket" >"$work/server.log" 2>&1
server_pid=$spawned
wait_for 10 listening $server_port || fail "server did not listen"
wait_for 10 test -S "$socket" || fail "server made no control socket"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"
established() { wait_for 10 has_event "$1" '.event == "established"' || fail "no session in $1 ($(tail -n 3 "$1"))"; }
closed_revoked() { has_event "$1" '.event == "closed" and .reason == "revoked" and .by_peer == true'; }
# Milliseconds since the epoch of the JSON log line FILTER selects in FILE (its "time").
event_ms() { events "$1" "$2" | head -1 | jq -r '.time | sub("\\.(?<ms>[0-9]+)Z$"; "Z \(.ms)")' |
  { read -r stamp ms; echo $(($(date -u -d "${stamp%Z}" +%s) * 1000 + 10#$ms)); }; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# 1. revoke --user: alice's session ends within 100 ms of the command's return; bob's stays.
TETHER_PASSWORD=alice-password client "$work/alice.log" $server_port --user alice
alice_pid=$client_pid
established "$work/alice.log"
TETHER_PASSWORD=bob-password client "$work/bob.log" $server_port --user bob
bob_pid=$client_pid
bob_port=$local_port
established "$work/bob.log"
output=$("$tether" admin --socket "$socket" revoke --user alice)
returned_ms=$(now_ms)
[[ $output == "revoked 1 session of user alice" ]] || fail "revoke printed '$output'"
client_pid=$alice_pid
expect_exit 9 "$work/alice.log"
closed_revoked "$work/alice.log" || fail "alice's session did not end with revoked ($(tail -n 3 "$work/alice.log"))"
closed_ms=$(event_ms "$work/alice.log" '.event == "closed"')
delay_ms=$((closed_ms - returned_ms))
((delay_ms <= 100)) || fail "alice's session ended $delay_ms ms after the revoke returned"
kill -0 "$bob_pid" || fail "bob's client ended"
local_port=$bob_port
[[ $(echo_through still-here) == still-here ]] || fail "bob's session stopped carrying data"
has_event "$work/bob.log" '.event == "closed"' && fail "bob's session was closed"
has_event "$work/server.log" '.event == "closed" and .reason == "revoked"' ||
  fail "the server did not log the revocation"
echo "ok: revoke --user ended alice's session ($delay_ms ms after the command returned; exit 9, revoked); bob's stays up"

# 2. tether passwd --disable + tether admin reload cuts bob's SCRAM session.
"$tether" passwd --users "$users" --disable bob 2>>"$work/passwd.log"
has_event "$work/bob.log" '.event == "closed"' && fail "disabling alone ended bob's session before the reload"
output=$("$tether" admin reload --socket "$socket")  # --socket after the subcommand works too
[[ $output == "reloaded; revoked 1 session" ]] || fail "reload printed '$output'"
client_pid=$bob_pid
expect_exit 9 "$work/bob.log"
closed_revoked "$work/bob.log" || fail "bob's session did not end with revoked"
# And the disabled user cannot log in again.
TETHER_PASSWORD=bob-password client "$work/bob-again.log" $server_port --user bob
expect_exit 9 "$work/bob-again.log"
echo "ok: passwd --disable + admin reload cut bob's SCRAM session; bob's new login refused"

# 3. SIGHUP does the same, and the server keeps running.
TETHER_PASSWORD=alice-password client "$work/alice-2.log" $server_port --user alice
alice_pid=$client_pid
established "$work/alice-2.log"
"$tether" passwd --users "$users" --disable alice 2>>"$work/passwd.log"
kill -HUP "$server_pid"
expect_exit 9 "$work/alice-2.log"
closed_revoked "$work/alice-2.log" || fail "SIGHUP did not cut alice's session"
kill -0 "$server_pid" || fail "SIGHUP stopped the server"
echo "ok: passwd --disable + SIGHUP cut alice's session; the server runs on"

# 4. revoke --session with a prefix of the id ends that one session.
TETHER_PASSWORD=dave-password client "$work/dave.log" $server_port --user dave
established "$work/dave.log"
dave_id=$("$tether" status --json --socket "$socket" |
  jq -r '.[0].sessions[] | select(.principal == "dave" and .state == "open") | .id')
[[ ${#dave_id} == 32 ]] || fail "no session id for dave in tether status ($dave_id)"
output=$("$tether" admin --socket "$socket" revoke --session "${dave_id:0:16}")
[[ $output == "revoked session $dave_id" ]] || fail "revoke --session printed '$output'"
expect_exit 9 "$work/dave.log"
closed_revoked "$work/dave.log" || fail "dave's session did not end with revoked"
if "$tether" admin --socket "$socket" revoke --session "${dave_id:0:16}" 2>"$work/again.err"; then
  fail "revoking an ended session succeeded"
fi
grep -q "no open session" "$work/again.err" || fail "no clear error for an ended session: $(cat "$work/again.err")"
"$tether" admin --socket "$socket" revoke --session xyz 2>/dev/null && fail "a malformed id was accepted"
echo "ok: revoke --session PREFIX ended dave's session; an ended or malformed id is an error"

# 5. A jti added to the deny list ends its token's session (the file is watched), and a new login
#    with that token is refused while another token of the same subject still works.
client "$work/carol.log" $server_port --token-file "$work/secrets/token-1"
carol_pid=$client_pid
established "$work/carol.log"
printf 'jti-carol-1\n' >>"$work/secrets/denied"
client_pid=$carol_pid
expect_exit 9 "$work/carol.log"
closed_revoked "$work/carol.log" || fail "the denied token's session did not end with revoked"
client "$work/carol-again.log" $server_port --token-file "$work/secrets/token-1"
expect_exit 9 "$work/carol-again.log"
has_event "$work/carol-again.log" '.event == "closed" and (.message | contains("revoked"))' ||
  fail "the denied token's new login was not refused as revoked ($(tail -n 3 "$work/carol-again.log"))"
client "$work/carol-other.log" $server_port --token-file "$work/secrets/token-2"
carol_other_pid=$client_pid
established "$work/carol-other.log"
echo "ok: a denied jti ends its session and its new login is refused; another token still works"

# 6. Another uid may not use the admin socket, even with the socket's mode opened to everyone.
if [[ $(id -u) == 0 ]] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
  chmod 666 "$socket"
  status=0
  runuser -u nobody -- "$tether" admin --socket "$socket" revoke --user carol \
    >"$work/nobody.out" 2>"$work/nobody.err" || status=$?
  [[ $status == 1 ]] || fail "nobody's revoke exited $status ($(cat "$work/nobody.err"))"
  grep -q "permission denied" "$work/nobody.err" || fail "nobody was not refused: $(cat "$work/nobody.err")"
  runuser -u nobody -- "$tether" status --socket "$socket" >"$work/nobody-status.out" 2>&1 || true
  grep -q "permission denied" "$work/nobody-status.out" && ! grep -q "sessions" "$work/nobody-status.out" ||
    fail "nobody read the server's status: $(cat "$work/nobody-status.out")"
  kill -0 "$carol_other_pid" || fail "nobody's request ended carol's session"
  echo "ok: uid nobody is refused by the admin socket (SO_PEERCRED) although the mode allows it"
else
  echo "note: not root or no runuser here: the uid check is covered by the unit tests"
fi
echo "PASS"
