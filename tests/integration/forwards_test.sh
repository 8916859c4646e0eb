#!/usr/bin/env bash
# Integration test of the forward kinds beyond -L, with real programs on loopback:
#   -R  a service on the client's side is reached through a port the server listens on;
#   -D  curl through the SOCKS5 proxy fetches files from a local HTTP server by IPv4, IPv6 and domain
#       name; a target off the server's allow list fails with curl's SOCKS error and a log line;
#   stdio  `tether stdio` as ssh's ProxyCommand to a private sshd: a long command's output arrives
#       intact while the tunnel's TCP connection is killed (ss -K) twice; stdio's exit codes.
# Usage: forwards_test.sh PATH/TO/tether
set -euo pipefail
tether=$(realpath "$1")
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: ss -K and sshd need root"; exit 77; fi
for tool in socat ss sha256sum curl python3 ssh ssh-keygen /usr/sbin/sshd; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"

server_port=$(free_port)
echo_port=$(free_port)
remote_port=$(free_port)
socks_port=$(free_port)
http_port=$(free_port)
sshd_port=$(free_port)
closed_port=$(free_port)

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')
spawn "$tether" server --listen 127.0.0.1:$server_port --cert "$work/identity/certificate.pem" \
  --key "$work/identity/key.pem" --allow "127.0.0.1:$echo_port" --allow "127.0.0.1:$sshd_port" \
  --allow "127.0.0.1:$closed_port" --allow "127.0.0.1:$http_port" --allow "[::1]:$http_port" \
  --allow-listen "127.0.0.1:$remote_port" --auth none --heartbeat-interval 500 >"$work/server.log" 2>&1
wait_for 10 listening $server_port || fail "server did not listen"
trust=(--server "127.0.0.1:$server_port" --fingerprint "$fingerprint" --known-servers "$work/known")

# ---- -R: a client-side echo service reached through the server's port
spawn socat TCP-LISTEN:$echo_port,reuseaddr,fork,bind=127.0.0.1 EXEC:cat
mkdir -p "$work/www"
head -c 3M /dev/urandom >"$work/www/file"
spawn python3 -m http.server --bind :: --directory "$work/www" $http_port >"$work/http.log" 2>&1
spawn "$tether" client "${trust[@]}" -R 127.0.0.1:$remote_port:127.0.0.1:$echo_port -D $socks_port \
  --heartbeat-interval 500 >"$work/client.log" 2>&1
wait_for 10 grep -q "remote forward: server listening" "$work/client.log" || fail "-R listener not reported"
wait_for 10 listening $remote_port || fail "server does not listen on the -R port"
reply=$(printf 'through -R\n' | timeout 10 socat -t 2 - TCP:127.0.0.1:$remote_port)
[[ $reply == "through -R" ]] || fail "-R echo returned '$reply'"
head -c 2M /dev/urandom >"$work/r-source"
pv -q -L 2m "$work/r-source" | timeout 20 socat -t 5 - TCP:127.0.0.1:$remote_port >"$work/r-back" &
r_sender=$!
sleep 0.5
ss -K state established "( dport = :$server_port or sport = :$server_port )" >/dev/null 2>&1 || true
wait $r_sender || true
[[ $(sha256sum <"$work/r-source") == $(sha256sum <"$work/r-back") ]] || fail "-R: 2 MiB echo differs across a cut"
echo "ok: -R reaches the client-side service (echo, 2 MiB across a cut)"

# ---- -D: SOCKS5 by IPv4, IPv6 and domain name; a refused target
wait_for 10 listening $http_port || fail "http server did not start"
want=$(sha256sum <"$work/www/file")
for url in "--socks5 127.0.0.1:$socks_port http://127.0.0.1:$http_port/file" \
  "--socks5 127.0.0.1:$socks_port http://[::1]:$http_port/file" \
  "--socks5-hostname 127.0.0.1:$socks_port http://localhost:$http_port/file"; do
  # shellcheck disable=SC2086
  got=$(timeout 20 curl -sS --fail $url | sha256sum) || fail "curl $url failed"
  [[ $got == "$want" ]] || fail "curl $url: content differs"
done
echo "ok: -D SOCKS5 CONNECT by IPv4, IPv6 and domain name"
set +e
timeout 20 curl -sS --socks5-hostname 127.0.0.1:$socks_port http://example.invalid:80/ -o /dev/null 2>"$work/curl.err"
status=$?
set -e
[[ $status -ne 0 ]] || fail "curl to a target off the allow list succeeded"
wait_for 5 grep -q "example.invalid:80: target not allowed" "$work/client.log" || fail "no log line for the refused SOCKS target"
echo "ok: -D target off the allow list: curl exit $status ($(head -c 120 "$work/curl.err")), client log names it"

# ---- stdio: exit codes, then ssh with ProxyCommand across cuts
out=$(printf 'via stdio\n' | timeout 20 "$tether" stdio "${trust[@]}" 127.0.0.1:$echo_port 2>"$work/stdio.log")
[[ $out == "via stdio" ]] || fail "stdio echo returned '$out'"
set +e
timeout 20 "$tether" stdio "${trust[@]}" 127.0.0.1:$closed_port </dev/null >/dev/null 2>"$work/stdio-refused.log"
status=$?
set -e
[[ $status -eq 7 ]] || fail "stdio to a closed port exited $status, expected 7"
grep -q "refused" "$work/stdio-refused.log" || fail "stdio to a closed port: no 'refused' in its log"
echo "ok: stdio echo exits 0; a refused target exits 7 and says why"

mkdir -p /run/sshd "$work/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/user_key"
cat >"$work/ssh/sshd_config" <<CONFIG
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $work/ssh/host_key
AuthorizedKeysFile $work/ssh/user_key.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
CONFIG
spawn /usr/sbin/sshd -D -e -f "$work/ssh/sshd_config" 2>"$work/sshd.log"
wait_for 10 listening $sshd_port || fail "sshd did not start"
head -c 24M /dev/urandom >"$work/ssh-source"
proxy="$tether stdio --server 127.0.0.1:$server_port --known-servers $work/known --heartbeat-interval 500 %h:%p"
ssh -o ProxyCommand="$proxy 2>>$work/proxy.log" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o BatchMode=yes -i "$work/ssh/user_key" -p $sshd_port root@127.0.0.1 \
  "pv -q -L 8m $work/ssh-source" \
  >"$work/ssh-received" 2>"$work/ssh.log" &
ssh_pid=$!
sleep 1.5
ss -K state established "( dport = :$server_port or sport = :$server_port )" >/dev/null 2>&1 || true
sleep 1
ss -K state established "( dport = :$server_port or sport = :$server_port )" >/dev/null 2>&1 || true
wait $ssh_pid || fail "ssh through tether stdio failed (status $?)"
[[ $(sha256sum <"$work/ssh-source") == $(sha256sum <"$work/ssh-received") ]] || fail "ssh output differs"
resumes=$(grep -c "resumed" "$work/proxy.log" || true)
[[ $resumes -ge 1 ]] || fail "the stdio session logged no resume"
echo "ok: ssh via tether stdio ProxyCommand: 24 MiB of command output intact across 2 cuts ($resumes resumes)"
