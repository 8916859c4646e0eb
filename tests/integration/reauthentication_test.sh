#!/usr/bin/env bash
# Integration test of session lifetime and in-place re-authentication through the real binaries:
# 1. a session lives across 20 re-authentications with OAUTHBEARER tokens of 5 s lifetime (a script
#    rewrites the token file) while a sha256-verified transfer runs: zero data lost, one session;
# 2. when the refresh stops, the session ends with credentials-expired within the token's lifetime
#    plus one second, and the client exits 9;
# 3. --max-reauth enforces a lifetime on password (SCRAM) sessions: a client that re-authenticates
#    lives on, one with --no-reauth is cut at the lifetime, counted as without re-authentication;
# 4. audit mode (a negative --max-reauth) keeps such a session and counts the frames it carries.
# Usage: reauthentication_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
for tool in socat python3 jq sha256sum pv; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
token_port=$(free_port)
enforce_port=$(free_port)
audit_port=$(free_port)
target_port=$(free_port)
sink_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
users=$work/secrets/users
printf 'correct horse\n' | "$tether" passwd --users "$users" alice 2>>"$work/passwd.log"

# An HS256 key in a JWKS; a writer signs a fresh 5-second token into the token file every second
# (atomically: write then rename), until its stop file appears.
python3 "$(dirname "$0")/test_tokens.py" jwks "$work/secrets"
cat >"$work/tokens.py" <<'PY'
import os, sys, time
sys.path.insert(0, sys.argv[3])
import test_tokens
directory, stop, name = sys.argv[1], sys.argv[2], "token"
key = test_tokens.load_key(directory)
path = os.path.join(directory, name)
while True:
    exp = int(time.time()) + 5
    claims = {"sub": "carol", "aud": "tether-test", "exp": exp}
    test_tokens.write_atomically(path, test_tokens.sign(key, claims) + "\n")
    with open(os.path.join(directory, name + "-last-exp"), "w") as out:
        out.write(f"{exp}\n")
    if os.path.exists(stop):
        break
    time.sleep(1)
PY
spawn python3 "$work/tokens.py" "$work/secrets" "$work/stop-tokens" "$(dirname "$0")"
writer_pid=$spawned
wait_for 10 test -s "$work/secrets/token" || fail "the token writer wrote no token"

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
# The sink hashes what one connection brings.
spawn socat -u TCP-LISTEN:$sink_port,reuseaddr,bind=127.0.0.1 SYSTEM:"sha256sum > $work/received.sha"
server_common=(--cert "$work/identity/certificate.pem" --key "$work/identity/key.pem"
  --allow 127.0.0.1:$target_port --allow 127.0.0.1:$sink_port --heartbeat-interval 500)
spawn "$tether" --log-format json server --listen 127.0.0.1:$token_port "${server_common[@]}" \
  --jwks "$work/secrets/jwks.json" --audience tether-test --reset-key "$work/token-reset.key" \
  --control-socket "$work/token.sock" >"$work/token-server.log" 2>&1
spawn "$tether" --log-format json server --listen 127.0.0.1:$enforce_port "${server_common[@]}" \
  --users "$users" --max-reauth 2s --reset-key "$work/enforce-reset.key" \
  --control-socket "$work/enforce.sock" >"$work/enforce-server.log" 2>&1
spawn "$tether" --log-format json server --listen 127.0.0.1:$audit_port "${server_common[@]}" \
  --users "$users" --max-reauth=-2s --reset-key "$work/audit-reset.key" \
  --control-socket "$work/audit.sock" >"$work/audit-server.log" 2>&1
for port in $token_port $enforce_port $audit_port; do
  wait_for 10 listening $port || fail "a server did not listen on $port"
done

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"
server_status() { "$tether" status --json --socket "$1" | jq '.[0]'; }

# 1. Twenty re-authentications under a running, verified transfer.
sink_local=$(free_port)
spawn "$tether" --log-format json client --server 127.0.0.1:$token_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" -L $sink_local:127.0.0.1:$sink_port --heartbeat-interval 500 \
  --token-file "$work/secrets/token" >"$work/token-client.log" 2>&1
client_pid=$spawned
wait_for 10 has_event "$work/token-client.log" '.event == "established"' ||
  fail "the token client did not establish ($(tail -n 3 "$work/token-client.log"))"
head -c $((13 * 1024 * 1024)) /dev/urandom >"$work/payload"
sha256sum <"$work/payload" | awk '{print $1}' >"$work/sent.sha"
# About 70 s at 190 KiB/s: longer than twenty rounds (a round every 3-4.5 s).
pv -q -L 190k "$work/payload" | socat -u - TCP:127.0.0.1:$sink_local &
sender=$!
reauthentications() { events "$work/token-server.log" '.event == "reauthenticated"' | wc -l; }
at_least_20_rounds() { (($(reauthentications) >= 20)); }
wait_for 150 at_least_20_rounds || fail "fewer than 20 re-authentications ($(reauthentications))"
wait "$sender" || fail "the sender failed"
wait_for 30 test -s "$work/received.sha" || fail "the sink saw no end of the transfer"
[[ $(awk '{print $1}' "$work/received.sha") == "$(cat "$work/sent.sha")" ]] ||
  fail "the transfer arrived altered"
established=$(events "$work/token-client.log" '.event == "established"' | wc -l)
((established == 1)) || fail "$established sessions: re-authentication must not start new ones"
has_event "$work/token-client.log" '.event == "closed"' && fail "the session closed during the transfer"
rounds=$(server_status "$work/token.sock" | jq .authentication.reauthenticated)
echo "ok: 13 MiB arrived intact across $rounds in-place re-authentications of 5 s tokens, one session"

# 2. The refresh stops: the session ends with credentials-expired by the last token's expiry + 1 s.
touch "$work/stop-tokens"
wait "$writer_pid" || fail "the token writer failed"  # it stops within a second
last_exp=$(cat "$work/secrets/token-last-exp")
expect_exit_within() {  # expect_exit_within SECONDS CODE LOG
  local status=0 waited=0
  while kill -0 "$client_pid" 2>/dev/null && ((waited < $1 * 10)); do nap 0.1; waited=$((waited + 1)); done
  kill -0 "$client_pid" 2>/dev/null && fail "client still running ($3)"
  wait "$client_pid" || status=$?
  [[ $status == "$2" ]] || fail "client exited $status, expected $2 ($(tail -n 5 "$3"))"
}
expect_exit_within 15 9 "$work/token-client.log"
closed=$(events "$work/token-client.log" '.event == "closed"')
[[ $(jq -r .reason <<<"$closed") == credentials-expired ]] || fail "expected credentials-expired: $closed"
closed_at=$(jq -r .time <<<"$closed" | python3 -c 'import sys, datetime; print(datetime.datetime.strptime(sys.stdin.read().strip(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp())')
python3 -c "import sys; sys.exit(0 if $closed_at <= $last_exp + 1.0 else 1)" ||
  fail "the session ended at $closed_at, later than the token's expiry $last_exp + 1 s"
echo "ok: refresh stopped -> credentials-expired at $closed_at (token expired at $last_exp), exit 9"

# 3. --max-reauth on passwords: re-authenticating lives on; --no-reauth is cut.
TETHER_PASSWORD='correct horse' client "$work/enforce-alice.log" $enforce_port --user alice
alice_pid=$client_pid
TETHER_PASSWORD='correct horse' client "$work/enforce-noreauth.log" $enforce_port --user alice --no-reauth
noreauth_pid=$client_pid
wait_for 10 has_event "$work/enforce-alice.log" '.event == "established"' || fail "alice did not establish"
client_pid=$noreauth_pid
expect_exit_within 10 9 "$work/enforce-noreauth.log"
has_event "$work/enforce-noreauth.log" '.event == "closed" and .reason == "credentials-expired"' ||
  fail "--no-reauth: not cut with credentials-expired ($(tail -n 3 "$work/enforce-noreauth.log"))"
nap 5
kill -0 "$alice_pid" || fail "the re-authenticating client died ($(tail -n 3 "$work/enforce-alice.log"))"
status=$(server_status "$work/enforce.sock")
(($(jq .authentication.reauthenticated <<<"$status") >= 2)) || fail "too few re-authentications: $status"
(($(jq .authentication.without_reauthentication <<<"$status") == 1)) || fail "no-reauth not counted: $status"
(($(jq .authentication.expired_sessions_closed <<<"$status") == 1)) || fail "expiry not counted: $status"
kill "$alice_pid"
echo "ok: --max-reauth 2s: the re-authenticating SCRAM session lives on, --no-reauth is cut (exit 9), both counted"

# 4. Audit mode keeps a session past its lifetime and counts what it carries.
TETHER_PASSWORD='correct horse' client "$work/audit.log" $audit_port --user alice --no-reauth
audit_pid=$client_pid
wait_for 10 has_event "$work/audit.log" '.event == "established"' || fail "the audit client did not establish"
wait_for 10 has_event "$work/audit-server.log" '.event == "lifetime-passed" and .audit_only == true' ||
  fail "audit mode did not report the session past its lifetime"
for round in 1 2 3; do
  [[ $(echo_through "audit $round") == "audit $round" ]] || fail "echo through the audited session failed"
done
kill -0 "$audit_pid" || fail "audit mode ended the session"
frames=$(server_status "$work/audit.sock" | jq .authentication.frames_on_expired_sessions)
((frames >= 3)) || fail "audit mode counted $frames frames on the expired session"
echo "ok: audit mode kept the session past its lifetime and counted $frames frames"

