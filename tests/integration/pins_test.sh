#!/usr/bin/env bash
# Pins as ssh does them: `tether fingerprint FILE` prints what keygen printed; a wrong --fingerprint
# fails with exit 3 and leaves known_servers as it was; the right one is saved only once a handshake
# verified it, and a later connection without --fingerprint uses the saved pin; `tether
# known-servers remove HOST:PORT` forgets it (the next connection is then refused, exit 2).
# Usage: pins_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
[[ $("$tether" fingerprint "$work/identity/certificate.pem") == "$fingerprint" ]] ||
  fail "tether fingerprint does not print keygen's fingerprint"
spawn "$tether" server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" --auth none \
  >"$work/server.log" 2>&1
wait_for 10 listening "$server_port" || fail "the server did not listen"
known=$work/known
wrong=sha256:$(printf '%064d' 0)

# connect [ARGS...]: a client with one -L forward; its exit code once it ends or 124 after 3 s.
connect() {
  local code=0
  timeout 3 "$tether" --log-format json client --server "127.0.0.1:$server_port" \
    --known-servers "$known" -L "$(free_port):127.0.0.1:9" "$@" >>"$work/client.log" 2>&1 || code=$?
  echo "$code"
}

# A wrong pin on first use: exit 3, no file written.
code=$(connect --fingerprint "$wrong")
[[ $code == 3 ]] || fail "a wrong --fingerprint exited $code, expected 3"
[[ ! -e $known ]] || fail "a wrong --fingerprint wrote $known: $(cat "$known")"

# The right pin: saved once verified (the client keeps running until timeout).
code=$(connect --fingerprint "$fingerprint")
[[ $code == 124 ]] || fail "the right --fingerprint exited $code"
[[ $(cat "$known") == "127.0.0.1:$server_port $fingerprint" ]] ||
  fail "the verified pin was not saved: $(cat "$known" 2>/dev/null)"
before=$(cat "$known")

# A typo later: exit 3, the saved pin unchanged; without --fingerprint the saved pin still works.
code=$(connect --fingerprint "$wrong")
[[ $code == 3 ]] || fail "a wrong --fingerprint against a saved pin exited $code, expected 3"
[[ $(cat "$known") == "$before" ]] || fail "a wrong --fingerprint changed $known: $(cat "$known")"
code=$(connect)
[[ $code == 124 ]] || fail "the saved pin no longer works (exit $code)"
grep -q '"session established\|established' "$work/client.log" || fail "no session established"

# known-servers remove: listed -> 0, then not listed -> 1; the next connection is refused.
"$tether" known-servers --known-servers "$known" remove "127.0.0.1:$server_port" >/dev/null ||
  fail "known-servers remove failed"
[[ ! -s $known ]] || fail "known-servers remove left: $(cat "$known")"
code=0
"$tether" known-servers --known-servers "$known" remove "127.0.0.1:$server_port" 2>/dev/null ||
  code=$?
[[ $code == 1 ]] || fail "removing an unlisted server exited $code, expected 1"
code=$(connect)
[[ $code == 2 ]] || fail "an unknown server without --fingerprint exited $code, expected 2"
echo "pins: ok"
