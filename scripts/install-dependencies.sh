#!/usr/bin/env bash
# Installs the Debian packages tether needs to build and test. Idempotent: it runs apt-get only when
# a package is missing, so repeated runs cost nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  g++-12 clang-14 libclang-rt-14-dev clang-format-14
  libexpected-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  libgsasl-dev libhiredis-dev libsqlite3-dev prometheus-cpp-dev
  socat pv iproute2 procps
  redis-server redis-tools nftables
  openssh-server openssh-client curl python3 jq openssl prometheus
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "install-dependencies: installing ${missing[*]}"
  sudo_prefix=""
  if [[ $(id -u) -ne 0 ]]; then sudo_prefix="sudo"; fi
  $sudo_prefix apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
