# shellcheck shell=bash
# Shared by the integration tests that put the client in a network namespace of its own
# (network_change_test.sh, interactive_test.sh), on top of common.sh ($work, spawn/pids, the cleanup
# trap, fail, free_port, wait_for, ...). Source it after `set -euo pipefail`, then call
# `netns_create TAG NETWORK` (TAG: a short prefix for names, NETWORK: the second octet). It adds to
# the cleanup the deletion of the namespace and veth pair (once the processes have ended), and sets
# $namespace, $host_side, $client_side (the veth ends), $server_address (10.NETWORK.X.1, this
# namespace) and $client_prefix (10.NETWORK.X: the client's end is $client_prefix.2/24).

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
namespace=""
host_side=""
netns_delete() {
  if [[ -n $namespace ]]; then ip netns del "$namespace" 2>/dev/null; fi
  if [[ -n $host_side ]]; then ip link del "$host_side" 2>/dev/null; fi
}
cleanup_after_kill+=(netns_delete)

netns_create() {  # netns_create TAG NETWORK
  local tag=$1 network=$2 subnet=$((100 + ($$ + $2) % 100))
  if ! ip netns add "tether-$tag-$$" 2>"$work/netns.err"; then
    echo "SKIP: cannot create a network namespace: $(cat "$work/netns.err")"
    exit 77
  fi
  namespace="tether-$tag-$$"
  host_side="${tag:0:3}h$$"
  client_side="${tag:0:3}c$$"
  client_prefix="10.$network.$subnet"
  server_address="$client_prefix.1"
  ip link add "$host_side" type veth peer name "$client_side"
  ip link set "$client_side" netns "$namespace"
  ip addr add "$server_address/24" dev "$host_side"
  ip link set "$host_side" up
  ip -n "$namespace" link set lo up
  # A secondary address survives the removal of the primary one (network_change_test relies on it).
  ip netns exec "$namespace" sysctl -qw "net.ipv4.conf.$client_side.promote_secondaries=1"
  ip -n "$namespace" addr add "$client_prefix.2/24" dev "$client_side"
  ip -n "$namespace" link set "$client_side" up
  wait_for 5 ip netns exec "$namespace" ping -c1 -W1 "$server_address" >/dev/null || true
}
