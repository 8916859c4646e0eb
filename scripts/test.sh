#!/usr/bin/env bash
# Checks the C++ formatting, then builds everything and runs every test, twice: a g++ 12 release build (warnings as errors), and a
# clang 14 build with AddressSanitizer + UndefinedBehaviorSanitizer that also builds the libFuzzer
# targets. Installs its own dependencies from Debian first. Usage: scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-dependencies.sh
scripts/check-format.sh

jobs=$(nproc)
run_build() {
  local name=$1
  shift
  echo "==> configure $name"
  cmake -S . -B "build/$name" -G Ninja "$@" >/dev/null
  echo "==> build $name"
  cmake --build "build/$name" -j "$jobs"
  echo "==> test $name"
  (cd "build/$name" && ctest --output-on-failure -j "$jobs" --timeout 600)
}

unset TETHER_PROPERTY_SEEDS_PER_SHARD
run_build gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++-12 -DTETHER_WARNINGS_AS_ERRORS=ON
# Assertions on, light optimisation; the sanitizer run covers 2,000 property seeds (the g++ run covers
# the full 10,000) to keep the whole command near ten minutes on two cores.
export TETHER_PROPERTY_SEEDS_PER_SHARD=200
run_build clang-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_CXX_COMPILER=clang++-14 -DTETHER_SANITIZE=ON -DTETHER_FUZZ=ON -DTETHER_BENCHMARKS=OFF \
  -DTETHER_WARNINGS_AS_ERRORS=ON
echo "==> all tests passed in both builds"
