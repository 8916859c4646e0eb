#!/usr/bin/env bash
# The main job: builds tether and runs a local tunnel demo. A server and a client with -L to a local
# sink; 48 MiB flow through the tunnel while its TCP connection is killed twice (ss -K); the session
# survives, and the demo prints both logs (suspended / resumed lines) and the sha256 of what arrived.
# Installs its own dependencies from Debian. Needs root for ss -K (as on the CI machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-dependencies.sh
cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++-12 >/dev/null
cmake --build build/gcc --target tether
SHOW_LOGS=1 bash tests/integration/tunnel_cut_test.sh build/gcc/apps/tether/tether
