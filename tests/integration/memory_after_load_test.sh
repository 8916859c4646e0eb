#!/usr/bin/env bash
# Integration test: after a load ends, a tether server's and client's RSS return to within 32 MiB of
# their idle figure; under load, RSS per tunnelled connection stays far below a copy buffer per
# connection. Runs bench/memory_after_load.sh with 500 echo connections (16 KiB each way).
# Usage: memory_after_load_test.sh PATH/TO/tether
set -euo pipefail
tether=$1
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
script=$(dirname "$0")/../../bench/memory_after_load.sh
output=$(bash "$script" --tether "$tether" --mode echo --connections 500 --settle 4)
echo "$output"
results=$(grep '^RESULT' <<<"$output" | sed 's/^RESULT //' | tr ' ' '\n')
value() { awk -F= -v key="$1" '$1 == key {print $2}' <<<"$results"; }
status=0
for side in server client; do
  idle=$(value "${side}_idle") after=$(value "${side}_after") per=$(value "${side}_per_connection_kib")
  [[ -n $idle && -n $after && -n $per ]] || { echo "FAIL: no figures for the $side"; exit 1; }
  if awk -v a="$after" -v i="$idle" 'BEGIN {exit !(a - i > 32)}'; then
    echo "FAIL: $side RSS after the load is $after MiB, idle was $idle MiB (more than 32 MiB above)"
    status=1
  fi
  if ((per > 64)); then
    echo "FAIL: $side holds $per KiB per open connection (a buffer per connection?)"
    status=1
  fi
done
((status == 0)) && echo "ok: RSS returns near idle after the load, and stays small per connection"
exit "$status"
