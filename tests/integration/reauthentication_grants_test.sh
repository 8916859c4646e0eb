#!/usr/bin/env bash
# Integration test: after an in-place re-authentication the new token's scopes are the grants.
# The first token grants -L targets A and B and a -R listener; the refreshed one grants only A.
# Then, through the real binaries:
# 1. an open -L connection to B is closed on the client side within a second of the
#    re-authentication, and both sides log why (the server: the target is not granted to the
#    principal; the client: the reset's code, not granted);
# 2. an open -L connection to A keeps carrying data, and new ones to A still work;
# 3. a new -L connection to B is refused;
# 4. the -R listener no longer granted is closed on the server, and the connection it had accepted
#    is reset too;
# 5. the session itself lives on.
# Usage: reauthentication_grants_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
for tool in socat python3 jq; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
target_a=$(free_port)
target_b=$(free_port)
local_a=$(free_port)
local_b=$(free_port)
remote_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/secrets"

# An HS256 key in a JWKS; each call signs one 10-minute token with the given scopes into the token
# file (atomically: write then rename). The principal carries a terminal escape, which every log
# line that names it must show escaped ("alice\x1b[1m").
tokens="$(dirname "$0")/test_tokens.py"
python3 "$tokens" jwks "$work/secrets"
sign_token() {
  python3 "$tokens" token "$work/secrets" token \
    "$(jq -cn --arg scope "$1" '{sub: "alice\u001b[1m", aud: "tether-test", exp_in: 600, scope: $scope}')"
}
sign_token \
  "tether:connect:127.0.0.1:$target_a tether:connect:127.0.0.1:$target_b tether:listen:127.0.0.1:$remote_port"

spawn socat TCP-LISTEN:$target_a,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn socat TCP-LISTEN:$target_b,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
# Grants enforced (a grant for nobody turns them on); the token's scopes are alice's grants. Sessions
# live 2 s: the client re-authenticates every 1.7-1.9 s.
spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_a --allow 127.0.0.1:$target_b --allow-listen 127.0.0.1:$remote_port \
  --heartbeat-interval 500 --jwks "$work/secrets/jwks.json" --audience tether-test \
  --grant nobody=127.0.0.1:1 --max-reauth 2s --reset-key "$work/reset.key" >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "the server did not listen"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"
spawn "$tether" --log-format json client --server 127.0.0.1:$server_port --fingerprint "$fingerprint" \
  --known-servers "$work/known" -L $local_a:127.0.0.1:$target_a -L $local_b:127.0.0.1:$target_b \
  -R $remote_port:127.0.0.1:$target_a --heartbeat-interval 500 --token-file "$work/secrets/token" \
  >"$work/client.log" 2>&1
client_pid=$spawned
wait_for 10 has_event "$work/client.log" '.event == "established"' ||
  fail "the client did not establish ($(tail -n 3 "$work/client.log"))"
wait_for 10 listening $remote_port || fail "the -R listener did not open"
through() { printf '%s\n' "$2" | socat -t 2 - TCP:127.0.0.1:$1; }
[[ $(through $local_a a) == a ]] || fail "target A was refused"
[[ $(through $local_b b) == b ]] || fail "target B was refused"
[[ $(through $remote_port r) == r ]] || fail "the -R forward did not carry data"

# Long-lived connections to A and B through -L, and one through the -R listener: each reads its
# own echo, so they stay open. The holder prints "ready", then waits for a line on its standard
# input (the token was switched), then reports when and how the connections to B and through -R
# ended, and whether the one to A still carries data.
cat >"$work/hold.py" <<'PY'
import socket, sys, time
ports = [int(port) for port in sys.argv[1:4]]
def echo(connection, text):
    connection.sendall(text.encode())
    got = b""
    while len(got) < len(text):
        chunk = connection.recv(100)
        if not chunk:
            return False
        got += chunk
    return got == text.encode()
def end_of(connection):
    connection.settimeout(15)
    try:
        how = "eof" if not connection.recv(100) else "data"
    except socket.timeout:
        how = "open"
    except ConnectionResetError:
        how = "reset"
    return f"{how} {time.time():.3f}"
a, b, remote = [socket.create_connection(("127.0.0.1", port), timeout=5) for port in ports]
if not (echo(a, "a1\n") and echo(b, "b1\n") and echo(remote, "r1\n")):
    print("no echo before", flush=True)
    sys.exit(1)
print("ready", flush=True)
sys.stdin.readline()
print("b " + end_of(b), flush=True)
print("r " + end_of(remote), flush=True)
print("a " + ("echo" if echo(a, "a2\n") and echo(a, "a3\n") else "broken"), flush=True)
PY
coproc holder { python3 "$work/hold.py" $local_a $local_b $remote_port 2>"$work/hold.err"; }
pids+=("$holder_PID")
exec {holder_in}<&"${holder[0]}" {holder_out}>&"${holder[1]}"
read -r -t 10 line <&$holder_in || fail "the holder did not start ($(cat "$work/hold.err"))"
[[ $line == ready ]] || fail "the holder: $line"

# From now on the token grants only A.
switched=$EPOCHREALTIME
sign_token "tether:connect:127.0.0.1:$target_a"
echo switched >&$holder_out
read -r -t 20 _ how closed_at <&$holder_in || fail "the holder reported nothing ($(cat "$work/hold.err"))"
[[ $how == reset || $how == eof ]] || fail "the connection to B stayed open ($how)"
read -r -t 20 _ remote_how remote_closed_at <&$holder_in || fail "the holder did not report -R"
[[ $remote_how == reset || $remote_how == eof ]] ||
  fail "the connection through the -R listener no longer granted stayed open ($remote_how)"
read -r -t 10 _ a_state <&$holder_in || fail "the holder did not report A"
[[ $a_state == echo ]] || fail "the connection to A stopped carrying data ($a_state)"
echo "ok: the open connections to B ($how) and through -R ($remote_how) ended; the one to A still echoes"

# The re-authentication that dropped B: the last one the server logged before the close.
reauthenticated_at=$(jq -r 'select(.event == "reauthenticated") | .time' "$work/server.log" |
  python3 -c '
import datetime, sys
switched, closed = float(sys.argv[1]), float(sys.argv[2])
times = [datetime.datetime.strptime(line.strip(), "%Y-%m-%dT%H:%M:%S.%fZ")
         .replace(tzinfo=datetime.timezone.utc).timestamp() for line in sys.stdin if line.strip()]
times = [t for t in times if switched <= t <= closed + 0.01]
print(f"{times[-1]:.3f}" if times else "none")' "$switched" "$closed_at")
[[ $reauthenticated_at != none ]] || fail "no re-authentication between the switch and the close"
python3 -c "import sys; sys.exit(0 if $closed_at - $reauthenticated_at <= 1.0 else 1)" ||
  fail "the connection to B ended at $closed_at, over a second after the re-authentication at $reauthenticated_at"
python3 -c "import sys; sys.exit(0 if $remote_closed_at - $reauthenticated_at <= 1.0 else 1)" ||
  fail "the -R connection ended at $remote_closed_at, over a second after the re-authentication at $reauthenticated_at"
echo "ok: closed $(python3 -c "print(f'{$closed_at - $reauthenticated_at:.3f}')") s after the re-authentication"

# Why, on both sides, escaped (the server names the principal).
alice='alice\\x1b[1m'  # as the JSON log shows the escaped principal
grep -qF "after re-authentication: 127.0.0.1:$target_b is not granted to $alice" \
  "$work/server.log" || fail "the server did not log why it reset the stream"
grep -q "stream [0-9]* to 127.0.0.1:$target_b: reset by the peer (not granted: the credential" \
  "$work/client.log" || fail "the client did not log why its stream to B was reset"
grep -q "resetting it too: its -R listener is no longer granted" "$work/server.log" ||
  fail "the server did not log why it reset the -R connection"
# The principal's escape byte never reaches a log as itself (raw, or as JSON's \u001b).
grep -qF -e $'\x1b' -e '\u001b' "$work/server.log" "$work/client.log" &&
  fail "a log carries the principal's escape byte unescaped"
echo "ok: both sides logged why, escaped"

[[ $(through $local_a a4) == a4 ]] || fail "a new connection to A was refused"
[[ $(through $local_b refused || true) != refused ]] || fail "a new stream reached B, no longer granted"
wait_for 5 grep -qF "refused 127.0.0.1:$target_b is not granted to $alice" "$work/server.log" ||
  fail "the refusal of B does not name the principal"
echo "ok: new connections reach A and not B"

wait_for 5 bash -c "! ss -Htln 'sport = :$remote_port' | grep -q ." ||
  fail "the -R listener no longer granted is still open"
grep -qF "after re-authentication: 127.0.0.1:$remote_port is not granted to $alice" "$work/server.log" ||
  fail "the server did not log why it closed the -R listener"
echo "ok: the -R listener no longer granted was closed"

kill -0 "$client_pid" || fail "the client exited"
established=$(events "$work/client.log" '.event == "established"' | wc -l)
((established == 1)) || fail "$established sessions: re-authentication must not start new ones"
echo "ok: one session throughout"
