#!/usr/bin/env bash
# Integration test of what the real `tether` trusts locally and how it logs what peers send (issue
# #12, items 9 and 10): a known-servers or config file another user can write is refused (exit 2,
# the file and the reason named); --control-socket leaves its directory's mode alone; a default
# control directory made by another user is refused by the process and by `tether status`; a
# symbolic link at the reset key is not followed; a target host holding a newline and escape
# sequences is logged escaped, on both sides, and repeated refusals are rate-limited.
# Usage: local_files_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (chown to another user)"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
server_port=$(free_port)
local_port=$(free_port)

fingerprint=$("$tether" keygen --out "$work/identity" | awk '/^fingerprint/ {print $2}')

# 1. A known-servers file anyone may write: refused before it is trusted, exit 2, clear message.
echo "127.0.0.1:$server_port $fingerprint" >"$work/known"
chmod 666 "$work/known"
set +e
"$tether" client --server 127.0.0.1:$server_port --known-servers "$work/known" \
  -L $local_port:127.0.0.1:9 >"$work/known.log" 2>&1
status=$?
set -e
[[ $status == 2 ]] || fail "world-writable known_servers: exit $status, expected 2"
grep -qF "refusing $work/known: it is writable by group or others (mode 0666" "$work/known.log" ||
  fail "world-writable known_servers: no clear message"
echo "ok: world-writable known_servers refused, exit 2: $(grep -o 'refusing.*' "$work/known.log")"

# ... and so is a config file in a directory others may write.
mkdir -m 777 "$work/shared"
printf '[client]\nserver = "127.0.0.1:%s"\n' "$server_port" >"$work/shared/tether.toml"
set +e
"$tether" --config "$work/shared/tether.toml" client -L $local_port:127.0.0.1:9 \
  >"$work/config.log" 2>&1
status=$?
set -e
[[ $status == 2 ]] || fail "config in a world-writable directory: exit $status, expected 2"
grep -qF "refusing $work/shared/tether.toml: $work/shared is writable by group or others" \
  "$work/config.log" || fail "config in a world-writable directory: no clear message"
echo "ok: config file in a world-writable directory refused, exit 2"

# 2. A symbolic link at the reset key is neither followed nor replaced.
ln -s "$work/victim" "$work/reset.key"
set +e
"$tether" server --listen 127.0.0.1:$server_port --plain-insecure --auth none \
  --reset-key "$work/reset.key" --control-socket none >"$work/reset.log" 2>&1
status=$?
set -e
[[ $status == 2 ]] || fail "symlinked reset key: exit $status, expected 2"
grep -q "symbolic link" "$work/reset.log" || fail "symlinked reset key: no clear message"
[[ ! -e $work/victim ]] || fail "the reset key's symbolic link was followed"
rm "$work/reset.key"
echo "ok: symlinked reset.key refused, its target not created"

# 3. --control-socket DIR/t.sock: DIR's mode is left as it is (the old code made it 0700).
mkdir -m 755 "$work/x"
spawn "$tether" server --listen 127.0.0.1:$server_port --plain-insecure --auth none \
  --reset-key "$work/reset.key" --allow "127.0.0.1:$server_port" \
  --control-socket "$work/x/t.sock" >"$work/server.log" 2>&1
wait_for 10 test -S "$work/x/t.sock" || fail "no control socket at $work/x/t.sock"
[[ $(stat -c %a "$work/x") == 755 ]] || fail "--control-socket changed $work/x to $(stat -c %a "$work/x")"
"$tether" status --socket "$work/x/t.sock" | grep -q "^server (pid" || fail "tether status --socket"
echo "ok: --control-socket $work/x/t.sock left $work/x at mode 755; tether status reads it"

# 4. A default control directory made by another user: the process refuses it (and runs without a
#    control socket), and `tether status` refuses to look inside.
mkdir -m 700 "$work/run" "$work/run/tether"
chown 65534:65534 "$work/run/tether"
set +e
XDG_RUNTIME_DIR=$work/run "$tether" status >"$work/status.out" 2>"$work/status.log"
status=$?
set -e
[[ $status == 1 ]] || fail "tether status in another user's directory: exit $status, expected 1"
grep -q "owned by uid 65534" "$work/status.log" || fail "tether status: no clear message"
echo "ok: tether status refuses a control directory owned by another user"

# 5. A target host with a newline and terminal escapes: escaped in the server's and the client's
#    logs; 30 refusals give at most 10 server lines (the rate limit: 10 per 10 s per kind).
evil=$'evil\n[warn] fake line\e]0;title\a\e[2J'  # no ':' (it would split the -L spec)
XDG_RUNTIME_DIR=$work/run spawn "$tether" client --server 127.0.0.1:$server_port --plain-insecure \
  -L "$local_port:$evil:80" >"$work/client.log" 2>&1
wait_for 10 grep -q "established" "$work/client.log" || fail "client did not establish"
grep -q "owned by uid 65534" "$work/client.log" || fail "client did not refuse the control directory"
for _ in {1..30}; do socat -u /dev/null TCP:127.0.0.1:$local_port 2>/dev/null || true; done
escaped='evil\x0a[warn] fake line\x1b]0;title\x07\x1b[2J:80'
wait_for 10 grep -qF "refused $escaped: " "$work/server.log" ||
  fail "the server did not log the refused host escaped"
# The client's own label names the host escaped; the server's reply (itself escaped) is escaped
# again, as any peer string.
wait_for 10 grep -qF "to $escaped: target not allowed by the server: 'evil\\\\x0a[warn]" "$work/client.log" ||
  fail "the client did not log the server's reply escaped"
for log in server client; do
  ! grep -q $'\e' "$work/$log.log" || fail "an escape byte reached the $log log"
  ! grep -q "^\[warn\] fake" "$work/$log.log" || fail "a forged line reached the $log log"
done
refusals=$(grep -c "is not a valid host name" "$work/server.log")
((refusals >= 1 && refusals <= 10)) || fail "$refusals refusal lines for 30 attempts, expected 1-10"
echo "ok: newline and escapes in a target host logged escaped; 30 refusals -> $refusals lines"
