# Shared by the integration tests that put the client in a network namespace of its own
# (network_change_test.sh, interactive_test.sh). Source it after `set -euo pipefail`, then call
# `netns_create TAG NETWORK` (TAG: a short prefix for names, NETWORK: the second octet). It provides:
#   $work (a temporary directory), pids (processes to end, newest first), fail, wait_for, and a
#   cleanup trap that ends the processes, deletes the namespace and veth pair, prints the logs in
#   $work on failure (or with SHOW_LOGS=1) and removes $work;
#   $namespace, $host_side, $client_side (the veth ends), $server_address (10.NETWORK.X.1, this
#   namespace) and $client_prefix (10.NETWORK.X: the client's end is $client_prefix.2/24).

work=$(mktemp -d)
pids=()
namespace=""
host_side=""
netns_cleanup() {
  local status=$?
  set +e
  for ((index = ${#pids[@]} - 1; index >= 0; index--)); do kill "${pids[index]}" 2>/dev/null; done
  sleep 0.3
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  [[ -n $namespace ]] && ip netns del "$namespace" 2>/dev/null
  [[ -n $host_side ]] && ip link del "$host_side" 2>/dev/null
  if [[ $status != 0 && $status != 77 ]]; then
    for log in "$work"/*.log; do echo "--- $(basename "$log")"; tail -n 40 "$log"; done
  elif [[ ${SHOW_LOGS:-0} == 1 ]]; then
    for log in "$work"/*.log; do echo "--- $(basename "$log")"; cat "$log"; done
  fi
  rm -rf "$work"
  exit $status
}
trap netns_cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
wait_for() {  # wait_for SECONDS COMMAND...: polls until COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do ((SECONDS < deadline)) || return 1; sleep 0.05; done
}

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
