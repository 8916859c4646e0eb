#!/usr/bin/env bash
# Fails (listing the places) when a tracked C++ file differs from what clang-format 14 makes of it
# with the repository's .clang-format. Fix with: git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 -i
set -euo pipefail
cd "$(dirname "$0")/.."
format=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n $format ]] || { echo "clang-format not found (scripts/install-dependencies.sh installs it)" >&2; exit 1; }
git ls-files -z '*.cpp' '*.hpp' | xargs -0 "$format" --dry-run -Werror
echo "==> clang-format: all C++ files formatted"
