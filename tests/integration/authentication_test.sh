#!/usr/bin/env bash
# Integration test of authentication through the real binaries: users made with `tether passwd`,
# SCRAM-SHA-256-PLUS end to end through -L with the data checked; a wrong password, a missing
# credential and a server without authentication each end the client with exit code 9 and a message
# naming why; an OAUTHBEARER token (HS256, signed here) works and an expired one is refused with its
# expiry time; a session authenticated with SCRAM-PLUS resumes across an `ss -K` cut (when ss can
# kill sockets here) without a new exchange; an expired password is refused as credentials-expired
# only with the right password. Usage: authentication_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
open_port=$(free_port)  # a server without authentication
target_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
users=$work/secrets/users
printf 'correct horse\n' | "$tether" passwd --users "$users" alice 2>>"$work/passwd.log"
printf 'battery staple\n' | "$tether" passwd --users "$users" bob 2>>"$work/passwd.log"
printf 'old pencil\n' | "$tether" passwd --users "$users" --expires 2001-02-03T04:05:06Z dora \
  2>>"$work/passwd.log"

# An HS256 key in a JWKS, and tokens signed with it (python3's hmac; nothing leaves this machine).
tokens="$(dirname "$0")/test_tokens.py"
python3 "$tokens" jwks "$work/secrets"
python3 "$tokens" token "$work/secrets" token \
  '{"sub": "carol", "aud": "tether-test", "iss": "test-issuer", "exp_in": 3600, "scope": "tether:connect"}'
python3 "$tokens" token "$work/secrets" expired \
  '{"sub": "carol", "aud": "tether-test", "iss": "test-issuer", "exp_in": -3600, "scope": "tether:connect"}'
chmod 600 "$work/secrets/"*

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_port --users "$users" --jwks "$work/secrets/jwks.json" \
  --audience tether-test --issuer test-issuer --heartbeat-interval 500 \
  --control-socket "$work/server.sock" >"$work/server.log" 2>&1
spawn "$tether" server --listen 127.0.0.1:$open_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --reset-key "$work/open-reset.key" \
  --allow 127.0.0.1:$target_port --auth none >"$work/open-server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"
wait_for 10 listening $open_port || fail "the unauthenticated server did not listen"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"

# 1. SCRAM-SHA-256-PLUS (the default for a user over TLS): data flows; the server names the principal.
TETHER_PASSWORD='correct horse' client "$work/alice.log" $server_port --user alice
alice_pid=$client_pid
alice_port=$local_port
wait_for 10 has_event "$work/alice.log" '.event == "established"' || fail "alice did not establish"
[[ $(echo_through hello) == hello ]] || fail "echo through alice's session failed"
wait_for 5 grep -q "authenticated alice with SCRAM-SHA-256-PLUS" "$work/server.log" ||
  fail "the server did not log alice's principal and mechanism"
status=$("$tether" status --json --socket "$work/server.sock" | jq '.[0]')
[[ $(jq -r '.sessions[0].principal + " " + .sessions[0].mechanism' <<<"$status") == "alice SCRAM-SHA-256-PLUS" ]] ||
  fail "tether status does not show alice's principal: $status"
[[ $(jq -r .authentication.required <<<"$status") == true ]] || fail "status: authentication not required"
echo "ok: SCRAM-SHA-256-PLUS end to end, principal logged and in tether status"

# 2. Wrong password: exit 9, the message names the mechanism; nothing about the secret.
TETHER_PASSWORD='Tr0ub4dor-3' client "$work/wrong.log" $server_port --user alice
expect_exit 9 "$work/wrong.log"
has_event "$work/wrong.log" '.event == "closed" and .reason == "auth-failed" and (.message | contains("SCRAM-SHA-256-PLUS"))' ||
  fail "wrong password: no auth-failed naming the mechanism ($(tail -n 3 "$work/wrong.log"))"
# (Not the word "wrong": the server's refusal line says "wrong password".)
grep -q Tr0ub4dor "$work/server.log" && fail "the password appears in the server log"
# An unknown user gets exactly the same message as a wrong password.
TETHER_PASSWORD='wrong' client "$work/unknown.log" $server_port --user mallory
expect_exit 9 "$work/unknown.log"
wrong_message=$(events "$work/wrong.log" '.event == "closed"' | jq -r .message)
unknown_message=$(events "$work/unknown.log" '.event == "closed"' | jq -r .message)
[[ $wrong_message == "$unknown_message" ]] ||
  fail "unknown user answered differently: '$unknown_message' vs '$wrong_message'"
failed=$("$tether" status --json --socket "$work/server.sock" | jq -r '.[0].authentication.failed')
((failed >= 2)) || fail "status counts $failed failed authentications, expected at least 2"
echo "ok: wrong password and unknown user: exit 9, same message ($wrong_message), counted"

# 3. No credential against a server that requires one: exit 9, the offered mechanisms listed.
client "$work/anonymous.log" $server_port
expect_exit 9 "$work/anonymous.log"
has_event "$work/anonymous.log" '.event == "closed" and (.message | contains("requires authentication")) and (.message | contains("SCRAM-SHA-256-PLUS"))' ||
  fail "anonymous client: no clear refusal ($(tail -n 3 "$work/anonymous.log"))"
echo "ok: no credential -> exit 9, offered mechanisms listed"

# 4. The reverse: a client with a credential refuses a server that does not authenticate.
TETHER_PASSWORD='correct horse' client "$work/open.log" $open_port --user alice
expect_exit 9 "$work/open.log"
has_event "$work/open.log" '.event == "closed" and (.message | contains("does not authenticate"))' ||
  fail "client used a server without authentication ($(tail -n 3 "$work/open.log"))"
echo "ok: a server without authentication is refused by a client that authenticates (exit 9)"

# 5. OAUTHBEARER: a valid token works; an expired one is refused with its expiry time.
client "$work/token.log" $server_port --token-file "$work/secrets/token"
token_pid=$client_pid
wait_for 10 has_event "$work/token.log" '.event == "established"' ||
  fail "token client did not establish ($(tail -n 3 "$work/token.log"))"
[[ $(echo_through token) == token ]] || fail "echo through the token session failed"
grep -q "authenticated carol with OAUTHBEARER" "$work/server.log" || fail "carol not logged"
kill "$token_pid"
client "$work/expired.log" $server_port --token-file "$work/secrets/expired"
expect_exit 9 "$work/expired.log"
has_event "$work/expired.log" '.event == "closed" and .reason == "credentials-expired" and (.message | contains("expired"))' ||
  fail "expired token: no credentials-expired with its time ($(tail -n 3 "$work/expired.log"))"
echo "ok: OAUTHBEARER token accepted; expired token refused (exit 9, credentials-expired)"

# 6. A SCRAM-PLUS session resumes across a cut without a new exchange (needs ss -K).
if ss -K dst 127.0.0.1 dport = :1 >/dev/null 2>&1; then
  ss -K dst 127.0.0.1 dport = :$server_port >/dev/null 2>&1 || true
  wait_for 10 has_event "$work/alice.log" '.event == "resumed"' || fail "alice did not resume after the cut"
  local_port=$alice_port
  [[ $(echo_through after) == after ]] || fail "echo after the resume failed"
  [[ $(grep -c "authenticated alice" "$work/server.log") == 1 ]] ||
    fail "the resume ran a new exchange"
  echo "ok: resumed across ss -K without a new exchange"
else
  echo "note: ss -K unavailable here; the resume case is covered by the unit tests"
fi
kill "$alice_pid"

# 7. Grants: on a server with --grant, alice reaches the target and bob (no grant) is refused with a
#    message naming him (and no one else's grants).
granted_port=$(free_port)
spawn "$tether" --log-format json server --listen 127.0.0.1:$granted_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --reset-key "$work/granted-reset.key" --allow 127.0.0.1:$target_port --users "$users" \
  --group "dba=alice" --grant "@dba=127.0.0.1:$target_port" >"$work/granted-server.log" 2>&1
wait_for 10 listening $granted_port || fail "the server with grants did not listen"
TETHER_PASSWORD='correct horse' client "$work/granted-alice.log" $granted_port --user alice
wait_for 10 has_event "$work/granted-alice.log" '.event == "established"' || fail "alice (granted) did not establish"
[[ $(echo_through granted) == granted ]] || fail "alice's granted target was refused"
TETHER_PASSWORD='battery staple' client "$work/granted-bob.log" $granted_port --user bob
wait_for 10 has_event "$work/granted-bob.log" '.event == "established"' || fail "bob did not establish"
[[ -z $(echo_through refused 2>/dev/null || true) ]] || fail "bob reached a target he was not granted"
wait_for 5 grep -q "is not granted to bob" "$work/granted-bob.log" ||
  fail "bob's refusal does not name him ($(tail -n 3 "$work/granted-bob.log"))"
grep -q "alice" "$work/granted-bob.log" && fail "bob's refusal names another principal"
echo "ok: grants: alice (@dba) reaches the target, bob is refused by name"

# 8. An expired password: with the right password, credentials-expired naming the expiry (exit 9);
#    with a wrong one, the ordinary wrong-password answer (expiry is told only to who proved it).
TETHER_PASSWORD='old pencil' client "$work/dora.log" $granted_port --user dora
expect_exit 9 "$work/dora.log"
has_event "$work/dora.log" '.event == "closed" and .reason == "credentials-expired" and (.message | contains("password expired at 2001-02-03T04:05:06Z"))' ||
  fail "expired password: no credentials-expired with its time ($(tail -n 3 "$work/dora.log"))"
TETHER_PASSWORD='wrong' client "$work/dora-wrong.log" $granted_port --user dora
expect_exit 9 "$work/dora-wrong.log"
has_event "$work/dora-wrong.log" '.event == "closed" and .reason == "auth-failed"' ||
  fail "expired user, wrong password: not auth-failed ($(tail -n 3 "$work/dora-wrong.log"))"
[[ $(events "$work/dora-wrong.log" '.event == "closed"' | jq -r .message) == "$wrong_message" ]] ||
  fail "an expired user's wrong password is answered unlike any other's"
echo "ok: expired password refused as credentials-expired, and only to a client that knew it"
echo "PASS"
