#!/usr/bin/env bash
# Integration test of the TOML configuration file with the authentication and lifetime options of
# issues #14 and #15, through the real binary: a server whose users, jwks, audience, issuer, auth
# list, max-reauth, expiry-enforcement, token-deny-list and metrics-listen all come from [server]
# serves a SCRAM client and a token client whose user, password-file, auth-mechanism, token-command
# and refresh-window-factor come from [client]; each option is seen to take effect (the auth list
# refuses PLAIN naming what it offers, the negative max-reauth logs audit mode, the metrics answer,
# the deny list refuses the token it names); and bad values in the file are refused at start with
# a message naming the option (exit 2 for a value CLI11 checks, 9 never). Usage: config_auth_test.sh
# PATH/TO/tether
set -euo pipefail
tether=$1
for tool in socat python3 jq curl; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"
server_port=$(free_port)
metrics_port=$(free_port)
target_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
users=$work/secrets/users
printf 'correct horse\n' | "$tether" passwd --users "$users" alice 2>>"$work/passwd.log"
printf 'correct horse\n' >"$work/secrets/password"
printf '# revoked tokens\n' >"$work/secrets/deny"
tokens="$(dirname "$0")/test_tokens.py"
python3 "$tokens" jwks "$work/secrets"
python3 "$tokens" token "$work/secrets" token \
  '{"sub": "carol", "aud": "tether-test", "iss": "test-issuer", "exp_in": 3600, "jti": "good-1"}'
python3 "$tokens" token "$work/secrets" denied \
  '{"sub": "carol", "aud": "tether-test", "iss": "test-issuer", "exp_in": 3600, "jti": "revoked-1"}'
printf 'revoked-1\n' >>"$work/secrets/deny"
chmod 600 "$work/secrets/"*

# server_toml EXTRA...: the server's file, each EXTRA line appended to [server].
server_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1:$server_port"
cert = "$work/identity/certificate.pem"
key = "$work/identity/key.pem"
allow = ["127.0.0.1:$target_port"]
heartbeat-interval = 500
users = "$users"
jwks = "$work/secrets/jwks.json"
audience = "tether-test"
issuer = "test-issuer"
auth = "SCRAM-SHA-256-PLUS,OAUTHBEARER"
max-reauth = "-1h"
token-deny-list = "$work/secrets/deny"
metrics-listen = "127.0.0.1:$metrics_port"
TOML
  printf '%s\n' "$@"
}
# client_toml EXTRA...: a client's file, each EXTRA line appended to [client].
client_toml() {
  cat <<TOML
[client]
server = "127.0.0.1:$server_port"
fingerprint = "$fingerprint"
known-servers = "$work/known"
heartbeat-interval = 500
local = ["$1:127.0.0.1:$target_port"]
TOML
  shift
  printf '%s\n' "$@"
}

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
server_toml 'expiry-enforcement = "on-use"' >"$work/server.toml"
spawn "$tether" --log-format json --config "$work/server.toml" server >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "server from the TOML file did not listen"

# 1. metrics-listen and max-reauth (negative: audit only) took effect.
wait_for 10 listening $metrics_port || fail "metrics-listen from the TOML file was not used"
curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.prom" ||
  fail "cannot scrape the metrics from the TOML file's metrics-listen"
grep -q "audit only" "$work/server.log" || fail "max-reauth = \"-1h\" from the TOML file was not used"
echo "ok: metrics-listen, max-reauth and expiry-enforcement accepted from [server]"

# 2. SCRAM with user, password-file and auth-mechanism from [client]: data flows.
alice_port=$(free_port)
client_toml "$alice_port" 'user = "alice"' "password-file = \"$work/secrets/password\"" \
  'auth-mechanism = "SCRAM-SHA-256-PLUS"' >"$work/alice.toml"
spawn "$tether" --log-format json --config "$work/alice.toml" client >"$work/alice.log" 2>&1
wait_for 10 has_event "$work/alice.log" '.event == "established"' ||
  fail "alice (from the TOML file) did not establish ($(tail -n 3 "$work/alice.log"))"
[[ $(printf 'alice\n' | socat -t 2 - TCP:127.0.0.1:$alice_port) == alice ]] ||
  fail "echo through alice's session failed"
wait_for 5 grep -q "authenticated alice with SCRAM-SHA-256-PLUS" "$work/server.log" ||
  fail "users from the TOML file: alice not authenticated"
echo "ok: users (server) and user, password-file, auth-mechanism (client) from the TOML files"

# 3. token-command and refresh-window-factor from [client], jwks/audience/issuer from [server].
carol_port=$(free_port)
client_toml "$carol_port" "token-command = \"cat $work/secrets/token\"" \
  'refresh-window-factor = 0.9' >"$work/carol.toml"
spawn "$tether" --log-format json --config "$work/carol.toml" client >"$work/carol.log" 2>&1
wait_for 10 has_event "$work/carol.log" '.event == "established"' ||
  fail "carol (token-command from the TOML file) did not establish ($(tail -n 3 "$work/carol.log"))"
[[ $(printf 'carol\n' | socat -t 2 - TCP:127.0.0.1:$carol_port) == carol ]] ||
  fail "echo through carol's session failed"
grep -q "authenticated carol with OAUTHBEARER" "$work/server.log" || fail "carol not authenticated"
echo "ok: jwks, audience, issuer (server) and token-command, refresh-window-factor (client)"

# 4. The auth list and the deny list from [server] are enforced.
denied_port=$(free_port)
client_toml "$denied_port" "token-command = \"cat $work/secrets/denied\"" >"$work/denied.toml"
status=0
timeout 20 "$tether" --log-format json --config "$work/denied.toml" client \
  >"$work/denied.log" 2>&1 || status=$?
[[ $status == 9 ]] || fail "a token on the TOML file's deny list: exit $status, not 9"
plain_port=$(free_port)
client_toml "$plain_port" 'user = "alice"' "password-file = \"$work/secrets/password\"" \
  'auth-mechanism = "PLAIN"' >"$work/plain.toml"
status=0
timeout 20 "$tether" --log-format json --config "$work/plain.toml" client \
  >"$work/plain.log" 2>&1 || status=$?
[[ $status == 9 ]] || fail "PLAIN against auth = SCRAM-SHA-256-PLUS,OAUTHBEARER: exit $status"
grep -q "offers SCRAM-SHA-256-PLUS, OAUTHBEARER" "$work/plain.log" ||
  fail "the refusal does not name the TOML file's auth list ($(tail -n 2 "$work/plain.log"))"
echo "ok: auth and token-deny-list from [server] are enforced"

# 5. Bad values in the file: refused at start, naming the option.
# refused CODE TEXT LOG TETHER-ARGS...: tether exits with CODE and LOG holds TEXT.
refused() {
  local code=$1 text=$2 log=$3 status=0
  shift 3
  timeout 10 "$tether" "$@" >"$log" 2>&1 </dev/null || status=$?
  [[ $status == "$code" ]] || fail "$(basename "$log"): exit $status, not $code ($(tail -n 2 "$log"))"
  grep -q -- "$text" "$log" || fail "$(basename "$log"): no clear message ($(tail -n 2 "$log"))"
}
server_port=$(free_port)
metrics_port=$(free_port)
server_toml 'expiry-enforcement = "sometimes"' >"$work/bad-enforcement.toml"
refused 2 "expiry-enforcement" "$work/bad-enforcement.log" --config "$work/bad-enforcement.toml" server
server_toml 'max-reauth = "forever"' | sed '/^max-reauth = "-1h"$/d' >"$work/bad-reauth.toml"
refused 2 "max-reauth" "$work/bad-reauth.log" --config "$work/bad-reauth.toml" server
server_toml | sed 's/^metrics-listen = .*/metrics-listen = "everywhere"/' >"$work/bad-metrics.toml"
refused 2 "metrics-listen" "$work/bad-metrics.log" --config "$work/bad-metrics.toml" server
server_toml 'users-file = "/nonexistent"' >"$work/bad-key.toml"
refused 2 "users-file" "$work/bad-key.log" --config "$work/bad-key.toml" server
client_toml "$(free_port)" "token-command = \"cat $work/secrets/token\"" \
  'refresh-window-factor = 2.0' >"$work/bad-factor.toml"
refused 2 "refresh-window-factor must be between 0.5 and 1.0" "$work/bad-factor.log" \
  --config "$work/bad-factor.toml" client
echo "ok: bad values in the TOML file are refused at start, naming the option"
echo "PASS"
