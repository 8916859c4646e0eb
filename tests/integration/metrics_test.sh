#!/usr/bin/env bash
# Integration test of --metrics-listen through the real binaries: a SCRAM-authenticated server and
# client each serve /metrics; after data moved, both expositions pass `promtool check metrics`, the
# server counts one successful authentication and one active session, the client one active session
# and the bytes it moved; a wrong-password attempt makes tether_failed_authentication_total grow; a
# metrics port in use (exit 1) or a name instead of an address (exit 2) stops the server at startup
# with a clear error, from the command line and from the TOML configuration file. Skipped without promtool.
# Usage: metrics_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v promtool >/dev/null || { echo "SKIP: promtool missing (apt-get install prometheus)"; exit 77; }
for tool in curl socat jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_port=$(free_port)
server_metrics=$(free_port)
client_metrics=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"
printf 'correct horse\n' | "$tether" passwd --users "$work/secrets/users" alice 2>>"$work/passwd.log"

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn "$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow 127.0.0.1:$target_port --users "$work/secrets/users" \
  --metrics-listen 127.0.0.1:$server_metrics >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"
wait_for 10 listening $server_metrics || fail "server did not serve metrics on $server_metrics"
grep -q "metrics on http://127.0.0.1:$server_metrics/metrics" "$work/server.log" ||
  fail "the server did not log where its metrics are"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"

scrape() {  # scrape PORT NAME: /metrics of PORT into $work/NAME.prom, checked by promtool
  curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" >"$work/$2.prom" || fail "cannot scrape $2"
  promtool check metrics <"$work/$2.prom" >"$work/$2-promtool.log" 2>&1 ||
    fail "promtool rejects the $2 metrics: $(cat "$work/$2-promtool.log")"
}
metric() {  # metric NAME FILE: the sample's value (labels included in NAME), empty if absent
  awk -v name="$1" '$1 == name { print $2 }' "$2"
}

# 1. One authenticated session moves data; both sides' metrics are valid and say so.
TETHER_PASSWORD='correct horse' client "$work/alice.log" $server_port --user alice \
  --metrics-listen 127.0.0.1:$client_metrics
wait_for 10 has_event "$work/alice.log" '.event == "established"' || fail "alice did not establish"
head -c 200000 /dev/urandom | base64 -w0 >"$work/payload"
echo >>"$work/payload"
socat -t 5 - TCP:127.0.0.1:$local_port <"$work/payload" >"$work/echoed"
cmp -s "$work/payload" "$work/echoed" || fail "the data came back different"
payload_bytes=$(stat -c %s "$work/payload")

scrape $server_metrics server
[[ $(metric tether_successful_authentication_total "$work/server.prom") == 1 ]] ||
  fail "server: tether_successful_authentication_total is not 1: $(grep authentication "$work/server.prom")"
[[ $(metric 'tether_sessions{state="active"}' "$work/server.prom") == 1 ]] ||
  fail "server: not one active session: $(grep '^tether_sessions' "$work/server.prom")"
[[ $(metric tether_failed_authentication_total "$work/server.prom") == 0 ]] ||
  fail "server: failed authentications before any failure"
for name in tether_successful_reauthentication_total tether_failed_reauthentication_total \
  tether_reauthentication_latency_seconds_count tether_successful_authentication_no_reauth_total \
  tether_expired_sessions_killed_total tether_expired_session_frames_total tether_revocations_total \
  tether_resumes_total tether_replayed_bytes_total tether_connections_accepted_total \
  tether_handshake_failures_total tether_sessions_refused_total \
  tether_pending_connections_refused_total; do
  [[ -n $(metric $name "$work/server.prom") ]] || fail "server: $name missing"
done
grep -q '^tether_build_info{role="server",version="[0-9.]*"} 1$' "$work/server.prom" ||
  fail "server: no tether_build_info"
received=$(metric tether_received_bytes_total "$work/server.prom")
((received >= payload_bytes)) || fail "server: received $received bytes, sent $payload_bytes"

scrape $client_metrics client
[[ $(metric 'tether_sessions{state="active"}' "$work/client.prom") == 1 ]] ||
  fail "client: not one active session: $(grep '^tether_sessions' "$work/client.prom")"
sent=$(metric tether_sent_bytes_total "$work/client.prom")
received=$(metric tether_received_bytes_total "$work/client.prom")
((sent >= payload_bytes && received >= payload_bytes)) ||
  fail "client: sent $sent and received $received bytes, moved $payload_bytes each way"
for name in tether_resumes_total tether_replayed_bytes_total \
  tether_successful_reauthentication_total tether_heartbeats_missed_total; do
  [[ -n $(metric $name "$work/client.prom") ]] || fail "client: $name missing"
done
grep -q '^tether_build_info{role="client",' "$work/client.prom" || fail "client: no tether_build_info"
echo "ok: server and client metrics pass promtool; 1 authentication, 1 active session, bytes counted"

# 2. A wrong password makes the failure counter grow (and the success counter stay).
TETHER_PASSWORD='wrong' client "$work/wrong.log" $server_port --user alice
expect_exit 9 "$work/wrong.log"
scrape $server_metrics server-after
failed=$(metric tether_failed_authentication_total "$work/server-after.prom")
((failed >= 1)) || fail "server: tether_failed_authentication_total is $failed after a wrong password"
[[ $(metric tether_successful_authentication_total "$work/server-after.prom") == 1 ]] ||
  fail "server: the wrong password counted as a success"
echo "ok: a wrong password makes tether_failed_authentication_total grow to $failed"

# 3. Startup errors: the metrics port in use, a name instead of an address (also from the TOML file).
other_port=$(free_port)
status=0
timeout 10 "$tether" server --listen 127.0.0.1:$other_port --plain-insecure --auth none \
  --reset-key "$work/other-reset.key" --allow 127.0.0.1:$target_port \
  --metrics-listen 127.0.0.1:$server_metrics >"$work/in-use.log" 2>&1 || status=$?
[[ $status == 1 ]] || fail "a metrics port in use: exit $status, expected 1"
grep -q "metrics-listen 127.0.0.1:$server_metrics: cannot listen: .*in use" "$work/in-use.log" ||
  fail "a metrics port in use: no clear error ($(tail -n 2 "$work/in-use.log"))"
status=0
timeout 10 "$tether" server --listen 127.0.0.1:$other_port --plain-insecure --auth none \
  --reset-key "$work/other-reset.key" --allow 127.0.0.1:$target_port \
  --metrics-listen localhost:$other_port >"$work/name.log" 2>&1 || status=$?
[[ $status == 2 ]] || fail "--metrics-listen localhost: exit $status, expected 2 (usage)"
grep -q "^--metrics-listen: 'localhost:$other_port': not an IP address" "$work/name.log" || fail "--metrics-listen localhost: $(tail -n 1 "$work/name.log")"
printf '[server]\nmetrics-listen = "127.0.0.1:%s"\n' "$server_metrics" >"$work/tether.toml"
status=0
timeout 10 "$tether" --config "$work/tether.toml" server --listen 127.0.0.1:$other_port \
  --plain-insecure --auth none --reset-key "$work/other-reset.key" \
  --allow 127.0.0.1:$target_port >"$work/config.log" 2>&1 || status=$?
if [[ $status != 1 ]] || ! grep -q "metrics-listen 127.0.0.1:$server_metrics: cannot listen" "$work/config.log"; then
  fail "metrics-listen from the TOML file was not used (exit $status: $(tail -n 1 "$work/config.log"))"
fi
echo "ok: a metrics port in use (exit 1) or a name (exit 2) is a clear startup error, from flags and TOML"
echo "PASS"
