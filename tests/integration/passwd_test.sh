#!/usr/bin/env bash
# Integration test of `tether passwd`: creates a users file (mode 0600), updates a user (new salt,
# same line count), disables, enables and deletes users, keeps the file's mode across rewrites,
# refuses a world-readable file and bad names, and leaves no temporary file behind; sets, changes
# and removes a password's expiry (--expires DATE or a time from now, --no-expiry, --keep-password).
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

# Expiry: an absolute UTC time on a new password; a relative one with --keep-password (the verifier
# stays); a new password keeps the expiry; --no-expiry removes it; a kept expiry already past is
# refused for a new password.
verifier_of() { line_of "$1" | cut -d' ' -f2; }
expiry_of() { line_of "$1" | grep -o 'expires=[^ ]*' | cut -d= -f2 || true; }
printf 'chalk\n' | "$tether" passwd --users "$users" --expires 2030-01-02T03:04:05Z erin \
  2>"$work/expiry.log" || fail "cannot create erin with an expiry: $(cat "$work/expiry.log")"
[[ $(line_of erin) =~ ^erin\ SCRAM-SHA-256\$[^\ ]+\ expires=2030-01-02T03:04:05Z$ ]] ||
  fail "erin's line has no expiry: $(line_of erin)"
grep -q "password expires at 2030-01-02T03:04:05Z" "$work/expiry.log" ||
  fail "passwd did not say when the password expires: $(cat "$work/expiry.log")"
verifier=$(verifier_of erin)
now=$(date -u +%s)
"$tether" passwd --users "$users" --keep-password --expires 90d erin </dev/null 2>>"$work/expiry.log" ||
  fail "--keep-password --expires 90d failed: $(cat "$work/expiry.log")"
[[ $(verifier_of erin) == "$verifier" ]] || fail "--keep-password changed the verifier"
expiry=$(expiry_of erin)
difference=$(($(date -u -d "$expiry" +%s) - now - 90 * 86400))
((difference >= 0 && difference <= 5)) || fail "90d gave $expiry, $difference s off now + 90 days"
"$tether" passwd --users "$users" --keep-password --expires 12h erin 2>>"$work/expiry.log" ||
  fail "--expires 12h failed"
difference=$(($(date -u -d "$(expiry_of erin)" +%s) - now - 12 * 3600))
((difference >= 0 && difference <= 5)) || fail "12h gave $(expiry_of erin)"
printf 'crayon\n' | "$tether" passwd --users "$users" erin 2>>"$work/expiry.log" ||
  fail "cannot change erin's password"
[[ $(verifier_of erin) != "$verifier" ]] || fail "erin's password did not change"
[[ -n $(expiry_of erin) ]] || fail "a new password dropped the expiry: $(line_of erin)"
"$tether" passwd --users "$users" --disable erin 2>>"$work/expiry.log" || fail "cannot disable erin"
[[ $(line_of erin) == *" disabled expires="* ]] || fail "disabling lost the expiry: $(line_of erin)"
"$tether" passwd --users "$users" --enable erin 2>>"$work/expiry.log" || fail "cannot enable erin"
"$tether" passwd --users "$users" --keep-password --no-expiry erin 2>>"$work/expiry.log" ||
  fail "--no-expiry failed"
[[ -z $(expiry_of erin) && $(line_of erin) != *expires* ]] || fail "expiry not removed: $(line_of erin)"
[[ $(mode_of "$users") == 600 ]] || fail "expiry changes changed the mode to $(mode_of "$users")"
echo "ok: --expires (absolute, 90d, 12h), --keep-password, kept by a new password, --no-expiry"

"$tether" passwd --users "$users" --keep-password --expires 2001-02-03T04:05:06Z erin 2>>"$work/expiry.log" ||
  fail "cannot set an expiry in the past"
cp "$users" "$work/before"
status=0
printf 'eraser\n' | "$tether" passwd --users "$users" erin 2>"$work/expired.log" || status=$?
[[ $status == 1 ]] && grep -q "expired at 2001-02-03T04:05:06Z" "$work/expired.log" ||
  fail "a new password under a past expiry: exit $status, $(cat "$work/expired.log")"
cmp -s "$users" "$work/before" || fail "the refused change was written"
printf 'eraser\n' | "$tether" passwd --users "$users" --no-expiry erin 2>>"$work/expiry.log" ||
  fail "a new password with --no-expiry failed"
[[ -z $(expiry_of erin) ]] || fail "erin still expires: $(line_of erin)"
echo "ok: a new password under an expiry already past is refused"

# Bad expiry input: usage errors (exit 2), the file unchanged; a missing user is exit 1.
cp "$users" "$work/before"
for arguments in "--expires 2030-02-30T00:00:00Z" "--expires 2200-01-01T00:00:00Z" \
  "--expires 2030-01-02T03:04:05" "--expires 90x" "--expires 0d" "--expires -5d" \
  "--expires 99999999999d" "--expires 1d --no-expiry" "--keep-password" \
  "--keep-password --iterations 5000 --no-expiry" "--disable --expires 1d" "--delete --no-expiry"; do
  status=0
  # shellcheck disable=SC2086 # the arguments are split on purpose
  printf 'x\n' | "$tether" passwd --users "$users" $arguments erin 2>"$work/bad.log" || status=$?
  [[ $status == 2 ]] || fail "passwd $arguments: exit $status, expected 2 ($(cat "$work/bad.log"))"
done
grep -q "not a real date" < <("$tether" passwd --users "$users" --expires 2030-02-30T00:00:00Z erin 2>&1 </dev/null) ||
  fail "an impossible date is not named as such"
status=0
"$tether" passwd --users "$users" --keep-password --expires 1d nobody 2>"$work/bad.log" || status=$?
[[ $status == 1 ]] && grep -q "no user nobody" "$work/bad.log" || fail "--keep-password for a missing user: exit $status"
cmp -s "$users" "$work/before" || fail "a refused expiry change was written"
[[ $(find "$work/users" -mindepth 1 | wc -l) == 1 ]] || fail "a temporary file was left behind"
echo "ok: bad expiries refused"
