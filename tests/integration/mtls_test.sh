#!/usr/bin/env bash
# Integration test of mTLS through the real binaries, with a CA and client certificates made here by
# openssl: a certificate (CN=dave) verified against the server's --client-ca authenticates with
# EXTERNAL end to end through -L with the data checked, the principal from the CN by default and
# from the email SAN with --client-identity san-email; a server that asks for certificates still
# serves a client without one over SCRAM; a certificate from another CA, no credential against an
# EXTERNAL-only server, and EXTERNAL without a certificate are each refused with a clear message
# (exit 9, or 2 for the last: a usage error caught before connecting), the server logging the
# refusal with the certificate's verification error; a group-readable client key is refused. Usage: mtls_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)    # --client-ca and --users: every mechanism, EXTERNAL last
external_port=$(free_port)  # --auth EXTERNAL --client-identity san-email
target_port=$(free_port)
fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
mkdir -m 700 "$work/pki"
users=$work/pki/users
printf 'correct horse\n' | "$tether" passwd --users "$users" alice 2>>"$work/passwd.log"

# make_ca NAME: a self-signed P-256 CA in $work/pki/NAME-ca.{pem,key}.
make_ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1 test CA" -keyout "$work/pki/$1-ca.key" -out "$work/pki/$1-ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    2>>"$work/openssl.log"
}
# make_client CA NAME SUBJECT SAN: a client certificate signed by CA in $work/pki/NAME.{pem,key}.
make_client() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$3" \
    -keyout "$work/pki/$2.key" -out "$work/pki/$2.csr" 2>>"$work/openssl.log"
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=%s\n' "$4" \
    >"$work/pki/$2.ext"
  openssl x509 -req -in "$work/pki/$2.csr" -CA "$work/pki/$1-ca.pem" -CAkey "$work/pki/$1-ca.key" \
    -CAcreateserial -days 1 -extfile "$work/pki/$2.ext" -out "$work/pki/$2.pem" \
    2>>"$work/openssl.log"
}
make_ca tether
make_ca other
make_client tether dave /CN=dave email:dave@example.test
make_client other impostor /CN=dave email:dave@example.test  # same names, another CA
chmod 600 "$work/pki/"*.key

spawn socat TCP-LISTEN:$target_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
spawn "$tether" --log-format json server --listen 127.0.0.1:$server_port \
  --cert "$work/identity/certificate.pem" --key "$work/identity/key.pem" \
  --allow 127.0.0.1:$target_port --users "$users" --client-ca "$work/pki/tether-ca.pem" \
  --heartbeat-interval 500 >"$work/server.log" 2>&1
spawn "$tether" server --listen 127.0.0.1:$external_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --reset-key "$work/external-reset.key" \
  --allow 127.0.0.1:$target_port --auth EXTERNAL --client-ca "$work/pki/tether-ca.pem" \
  --client-identity san-email >"$work/external-server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"
wait_for 10 listening $external_port || fail "the EXTERNAL-only server did not listen"

# shellcheck source=SCRIPTDIR/clients.sh
source "$(dirname "$0")/clients.sh"
closed_with() {  # closed_with LOG TEXT: the client's closed event is auth-failed and names TEXT
  has_event "$1" ".event == \"closed\" and .reason == \"auth-failed\" and (.message | contains(\"$2\"))"
}

# 1. dave's certificate with EXTERNAL: data flows; the server names dave (the CN, the default).
client "$work/dave.log" $server_port --cert "$work/pki/dave.pem" --key "$work/pki/dave.key" \
  --auth-mechanism EXTERNAL
dave_pid=$client_pid
wait_for 10 has_event "$work/dave.log" '.event == "established"' ||
  fail "dave did not establish ($(tail -n 3 "$work/dave.log"))"
[[ $(echo_through hello) == hello ]] || fail "echo through dave's session failed"
wait_for 5 grep -q "authenticated dave with EXTERNAL" "$work/server.log" ||
  fail "the server did not log dave's principal and mechanism"
kill "$dave_pid"
echo "ok: EXTERNAL with a verified client certificate end to end, principal from the CN"

# 2. --client-identity san-email; --cert alone picks EXTERNAL.
client "$work/email.log" $external_port --cert "$work/pki/dave.pem" --key "$work/pki/dave.key"
email_pid=$client_pid
wait_for 10 has_event "$work/email.log" '.event == "established"' ||
  fail "dave (san-email) did not establish ($(tail -n 3 "$work/email.log"))"
[[ $(echo_through email) == email ]] || fail "echo through the san-email session failed"
wait_for 5 grep -q "authenticated dave@example.test with EXTERNAL" "$work/external-server.log" ||
  fail "the san-email server did not take the principal from the email SAN"
kill "$email_pid"
echo "ok: --client-identity san-email: principal dave@example.test"

# 3. A server that asks for certificates still serves a client without one (SCRAM).
TETHER_PASSWORD='correct horse' client "$work/alice.log" $server_port --user alice
alice_pid=$client_pid
wait_for 10 has_event "$work/alice.log" '.event == "established"' ||
  fail "alice (no certificate) did not establish ($(tail -n 3 "$work/alice.log"))"
[[ $(echo_through alice) == alice ]] || fail "echo through alice's session failed"
kill "$alice_pid"
echo "ok: no client certificate: SCRAM-SHA-256-PLUS still works"

# 4. The same names from another CA: the TLS handshake completes, but the certificate gives no
#    identity, so EXTERNAL is not offered on that connection: exit 9 with that message.
client "$work/impostor.log" $server_port --cert "$work/pki/impostor.pem" \
  --key "$work/pki/impostor.key" --auth-mechanism EXTERNAL
expect_exit 9 "$work/impostor.log"
closed_with "$work/impostor.log" "mechanism not offered on this connection" ||
  fail "another CA's certificate: no clear refusal ($(tail -n 3 "$work/impostor.log"))"
[[ $(grep -c "authenticated dave" "$work/server.log") == 1 ]] ||
  fail "a certificate from another CA authenticated dave"
# The server's refusal line says why, with OpenSSL's verification error for the certificate.
wait_for 5 grep -q "refused authentication from 127.0.0.1 .*mechanism EXTERNAL.*mechanism not offered on this connection.*client certificate: verification failed: unable to verify the first certificate" \
  "$work/server.log" || fail "no refusal line with the certificate's verification error"
echo "ok: a certificate from another CA is refused (exit 9), logged with OpenSSL's reason"

# 5. No credential against the EXTERNAL-only server: exit 9, EXTERNAL named as what it offers.
client "$work/anonymous.log" $external_port
expect_exit 9 "$work/anonymous.log"
closed_with "$work/anonymous.log" "requires authentication; it offers EXTERNAL" ||
  fail "no certificate: no clear refusal ($(tail -n 3 "$work/anonymous.log"))"
echo "ok: no client certificate against an EXTERNAL-only server -> exit 9"

# 6. EXTERNAL without --cert is a usage error (exit 2), caught before connecting.
client "$work/nocert.log" $external_port --auth-mechanism EXTERNAL
expect_exit 2 "$work/nocert.log"
grep -q "EXTERNAL needs --cert and --key" "$work/nocert.log" ||
  fail "EXTERNAL without a certificate: no clear message ($(tail -n 3 "$work/nocert.log"))"
echo "ok: --auth-mechanism EXTERNAL without --cert -> exit 2"

# 7. A client key others may read is refused, like the server's.
cp "$work/pki/dave.key" "$work/pki/readable.key"
chmod 640 "$work/pki/readable.key"
client "$work/readable.log" $server_port --cert "$work/pki/dave.pem" --key "$work/pki/readable.key"
expect_exit 2 "$work/readable.log"
grep -q "readable.key" "$work/readable.log" ||
  fail "a group-readable client key was not refused by name ($(tail -n 3 "$work/readable.log"))"
echo "ok: a group-readable client key is refused (exit 2)"
echo "PASS"
