# Shared by the benchmark scripts (auth_benchmark.sh, reauth_benchmark.sh): a private work
# directory with a server that is stopped on exit, a free loopback port, and the credentials every
# mechanism needs, made at run time. Expects $tether and $keep_log to be set; sets $work and
# $fingerprint.

# bench_workdir PREFIX: makes $work (mode 700) and installs the exit trap that stops the server
# ($server_pid) and removes $work unless $keep_log.
bench_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 700 "$work"
  server_pid=''
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}
server_pid=''
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=''
  fi
}
cleanup() {
  local status=$?
  stop_server
  if $keep_log; then echo "logs and credentials kept in $work"; else rm -rf "$work"; fi
  exit "$status"
}

free_port() {  # a loopback port no socket uses (10000-31999: below the ephemeral range)
  local port
  for _ in {1..200}; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    ss -Htan "( sport = :$port or dport = :$port )" | grep -q . && continue
    echo "$port"
    return 0
  done
  return 1
}


# make_bench_credentials [ITERATIONS]: the server identity ($fingerprint), a users file with user
# "bench" (password in $work/password; PBKDF2 ITERATIONS, default tether's), an RS256 JWKS and a
# 3-hour token for "bench", and a CA with a client certificate for CN=bench.
make_bench_credentials() {
  "$tether" keygen --out "$work/identity" >"$work/keygen.log" 2>&1
  fingerprint=$(awk '/^fingerprint/ {print $2}' "$work/keygen.log")
  printf 'bench password\n' >"$work/password"
  chmod 600 "$work/password"
  printf 'bench password\n' |
    "$tether" passwd --users "$work/users" ${1:+--iterations "$1"} bench 2>>"$work/passwd.log"

  b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/jwt.key" 2>>"$work/openssl.log"
  modulus=$(openssl rsa -in "$work/jwt.key" -noout -modulus 2>>"$work/openssl.log" | cut -d= -f2 |
    xxd -r -p | b64url)
  exponent=$(printf '\x01\x00\x01' | b64url)  # 65537, the exponent genpkey uses
  jq -n --arg n "$modulus" --arg e "$exponent" \
    '{keys: [{kty: "RSA", kid: "bench", alg: "RS256", use: "sig", n: $n, e: $e}]}' >"$work/jwks.json"
  header=$(printf '{"alg":"RS256","kid":"bench","typ":"JWT"}' | b64url)
  claims=$(jq -cn --argjson exp $(($(date +%s) + 3 * 3600)) \
    '{sub: "bench", aud: "tether-bench", iss: "bench-issuer", exp: $exp, scope: "tether:connect"}' |
    tr -d '\n' | b64url)
  signature=$(printf '%s.%s' "$header" "$claims" |
    openssl dgst -sha256 -sign "$work/jwt.key" -binary | b64url)
  printf '%s.%s.%s\n' "$header" "$claims" "$signature" >"$work/token"
  chmod 600 "$work/token" "$work/jwks.json" "$work/users"

  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    2>>"$work/openssl.log"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench \
    -keyout "$work/client.key" -out "$work/client.csr" 2>>"$work/openssl.log"
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$work/client.ext"
  openssl x509 -req -in "$work/client.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 1 -extfile "$work/client.ext" -out "$work/client.pem" \
    2>>"$work/openssl.log"
  chmod 600 "$work/"*.key
}
