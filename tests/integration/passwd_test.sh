#!/usr/bin/env bash
# Integration test of `tether passwd`: creates a users file (mode 0600), updates a user (new salt,
# same line count), disables, enables and deletes users, keeps the file's mode across rewrites,
# refuses a world-readable file and bad names, and leaves no temporary file behind.
# Usage: passwd_test.sh PATH/TO/tether
set -euo pipefail
tether=$1

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
users=$work/users/users.txt
mkdir -m 700 "$work/users"
mode_of() { stat -c %a "$1"; }
line_of() { grep "^$1 " "$users" || true; }

# Create: a new file, mode 0600, one SCRAM-SHA-256 verifier line at the default 4096 iterations.
printf 'pencil\n' | "$tether" passwd --users "$users" alice 2>"$work/passwd.log" ||
  fail "passwd could not create alice"
[[ $(mode_of "$users") == 600 ]] || fail "new users file has mode $(mode_of "$users"), not 600"
[[ $(line_of alice) =~ ^alice\ SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$ ]] ||
  fail "alice's line is not a SCRAM-SHA-256 verifier: $(line_of alice)"
grep -q pencil "$users" && fail "the password is stored in the file"
echo "ok: create (mode 600, verifier only)"

# Update with more iterations: the line changes (new salt), still one alice; a second user added.
before=$(line_of alice)
printf 'crayon\n' | "$tether" passwd --users "$users" --iterations 5000 alice 2>>"$work/passwd.log" ||
  fail "passwd could not update alice"
after=$(line_of alice)
[[ $after != "$before" && $after == "alice SCRAM-SHA-256\$5000:"* ]] || fail "alice not updated: $after"
printf 'hunter2\n' | "$tether" passwd --users "$users" bob 2>>"$work/passwd.log" || fail "cannot add bob"
[[ $(grep -c '^alice ' "$users") == 1 && $(grep -c '^bob ' "$users") == 1 ]] ||
  fail "expected one alice and one bob line"
echo "ok: update and add"

# The mode is kept across rewrites (0400 stays 0400), and comments stay.
{ echo '# tether users'; cat "$users"; } >"$work/edited" && cat "$work/edited" >"$users"
chmod 400 "$users"
"$tether" passwd --users "$users" --disable bob 2>>"$work/passwd.log" || fail "cannot disable bob"
[[ $(mode_of "$users") == 400 ]] || fail "rewrite changed the mode to $(mode_of "$users")"
[[ $(line_of bob) == *" disabled" ]] || fail "bob not disabled: $(line_of bob)"
[[ $(head -n 1 "$users") == "# tether users" ]] || fail "the comment was dropped"
"$tether" passwd --users "$users" --enable bob 2>>"$work/passwd.log" || fail "cannot enable bob"
[[ $(line_of bob) != *" disabled" ]] || fail "bob still disabled"
"$tether" passwd --users "$users" --delete bob 2>>"$work/passwd.log" || fail "cannot delete bob"
[[ -z $(line_of bob) ]] || fail "bob still present"
[[ -n $(line_of alice) ]] || fail "alice lost"
status=0
"$tether" passwd --users "$users" --delete bob 2>"$work/missing.log" || status=$?
[[ $status == 1 ]] && grep -q "no user bob" "$work/missing.log" || fail "deleting a missing user: exit $status"
[[ $(find "$work/users" -mindepth 1 | wc -l) == 1 ]] || fail "a temporary file was left behind: $(ls -a "$work/users")"
echo "ok: disable, enable, delete; mode 400 and comments kept"

# A world-readable file is refused and left as it was.
chmod 644 "$users"
cp "$users" "$work/before"
status=0
printf 'x\n' | "$tether" passwd --users "$users" carol 2>"$work/refused.log" || status=$?
[[ $status == 1 ]] || fail "world-readable users file: exit $status, expected 1"
grep -q "chmod 600" "$work/refused.log" || fail "no clear refusal: $(cat "$work/refused.log")"
cmp -s "$users" "$work/before" || fail "the refused file was changed"
chmod 600 "$users"
echo "ok: world-readable file refused"

# Bad input: a name outside the safe set, no password, an iteration count out of range.
status=0
printf 'x\n' | "$tether" passwd --users "$users" 'a,b' 2>/dev/null || status=$?
[[ $status == 2 ]] || fail "name 'a,b': exit $status, expected 2"
status=0
"$tether" passwd --users "$users" dave </dev/null 2>/dev/null || status=$?
[[ $status == 1 && -z $(line_of dave) ]] || fail "empty standard input: exit $status"
status=0
printf 'x\n' | "$tether" passwd --users "$users" --iterations 10 dave 2>/dev/null || status=$?
[[ $status == 2 ]] || fail "--iterations 10: exit $status, expected 2"
echo "ok: bad names, no password, iterations out of range refused"
