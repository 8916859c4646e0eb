#!/usr/bin/env bash
# The main job until the tunnel lands: builds the session core and runs a simulated session through a
# connection cut, a silent blackhole longer than the heartbeat budget and an address change, printing
# the session's events and the verified byte counts. Installs its own dependencies from Debian.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-dependencies.sh
cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++-12 >/dev/null
cmake --build build/gcc --target tether-simulate
build/gcc/tests/sim/tether-simulate "$@"
