#!/usr/bin/env bash
# Integration test of the rtnetlink route monitor: in a network namespace of its own, the probe must
# report an address added and removed (IPv4 and IPv6) and a default route added and deleted (IPv4
# and IPv6), and must stay silent about a non-default route, a default route in another table and
# messages forged by a process. Needs root and `ip netns`; skipped (77) otherwise.
# Usage: route_monitor_test.sh PATH/TO/route_monitor_probe
set -euo pipefail
probe=$1
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: ip missing"; exit 77; }

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
namespace=tether-route-$$
delete_namespace() { ip netns delete "$namespace" 2>/dev/null; }
cleanup_after_kill+=(delete_namespace)
probe_reported() { grep -qx -- "$1" "$work/probe.log"; }  # probe_reported LINE: the probe printed LINE
inside() { ip netns exec "$namespace" "$@"; }

ip netns add "$namespace" 2>/dev/null || { echo "SKIP: cannot create a network namespace"; exit 77; }
# A dummy link if the kernel has the module, else one end of a veth pair (both ends up for carrier).
if inside ip link add tether0 type dummy 2>/dev/null; then
  inside ip link set tether0 up
else
  inside ip link add tether0 type veth peer name tether1
  inside ip link set tether1 up
  inside ip link set tether0 up
fi
index=$(inside ip -o link show tether0 | cut -d: -f1)

# Not through the `inside` function: $! must be the probe itself (ip netns exec execs it).
spawn ip netns exec "$namespace" "$probe" >"$work/probe.log" 2>&1
probe_pid=$spawned
probe_started() { grep -q '^ready port' "$work/probe.log" || ! kill -0 "$probe_pid"; }
wait_for 5 probe_started || true
port=$(awk '/^ready port/ {print $3; exit}' "$work/probe.log")
if [[ -z $port ]] && ! kill -0 "$probe_pid" 2>/dev/null; then
  wait "$probe_pid" && status=0 || status=$?
  if [[ $status == 77 ]]; then echo "SKIP: $(cat "$work/probe.log")"; exit 77; fi
  fail "probe exited with $status before it was ready"
fi
[[ -n $port ]] || fail "probe never became ready"

# Forged first: delivery to one socket is in order, so once the real changes below are seen, the
# forged messages were read (and must have been dropped).
inside "$probe" --forge "$port" || fail "could not send the forged messages"

inside ip address add 10.77.0.2/24 dev tether0
wait_for 5 probe_reported "address-added $index 10.77.0.2" || fail "no line for the IPv4 address added"
inside ip -6 address add fd77::2/64 dev tether0 nodad
wait_for 5 probe_reported "address-added $index fd77::2" || fail "no line for the IPv6 address added"

inside ip route add 10.78.0.0/16 via 10.77.0.1 dev tether0
inside ip route add default via 10.77.0.1 dev tether0 metric 99 table 100
inside ip route add default via 10.77.0.1 dev tether0 metric 77
wait_for 5 probe_reported "default-route-added ipv4 interface $index gateway 10.77.0.1 priority 77" ||
  fail "no line for the IPv4 default route added"
inside ip -6 route add default via fd77::1 dev tether0 metric 77
wait_for 5 probe_reported "default-route-added ipv6 interface $index gateway fd77::1 priority 77" ||
  fail "no line for the IPv6 default route added"

inside ip route delete default via 10.77.0.1 dev tether0 metric 77
wait_for 5 probe_reported "default-route-removed ipv4 interface $index gateway 10.77.0.1 priority 77" ||
  fail "no line for the IPv4 default route deleted"
inside ip -6 route delete default via fd77::1 dev tether0 metric 77
wait_for 5 probe_reported "default-route-removed ipv6 interface $index gateway fd77::1 priority 77" ||
  fail "no line for the IPv6 default route deleted"

inside ip address delete 10.77.0.2/24 dev tether0
wait_for 5 probe_reported "address-removed $index 10.77.0.2" || fail "no line for the IPv4 address removed"
inside ip -6 address delete fd77::2/64 dev tether0
wait_for 5 probe_reported "address-removed $index fd77::2" || fail "no line for the IPv6 address removed"

! grep -q '192\.0\.2\.66\|priority 66' "$work/probe.log" || fail "a forged message was reported"
! grep -q '10\.78\.' "$work/probe.log" || fail "a non-default route was reported"
! grep -q 'priority 99' "$work/probe.log" || fail "a route in another table was reported"
! grep -q '^resynchronise\|^failed' "$work/probe.log" || fail "the probe lost changes or failed"

kill -TERM "$probe_pid"
wait "$probe_pid" && status=0 || status=$?
[[ $status == 0 ]] || fail "probe exited with $status on SIGTERM"
echo "ok: addresses and default routes reported, forged and irrelevant messages ignored"
[[ ${SHOW_LOGS:-0} == 1 ]] || print_logs  # the probe's output, also when the test passes
