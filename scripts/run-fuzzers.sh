#!/bin/sh
# Runs every fuzz_* binary in BUILD_DIR for SECONDS each, over a scratch copy of its committed
# corpus (tests/fuzz/<name>/corpus). New crashes are left in the working directory as crash-*.
set -eu
build=${1:?build dir}
secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/tests/fuzz/*/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin" | sed 's/^fuzz_//')
  corpus="$root/tests/fuzz/$name/corpus"
  work=$(mktemp -d)
  if [ -d "$corpus" ]; then cp -r "$corpus/." "$work/"; fi
  echo "== fuzzing $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$work" \
       > "$work.log" 2>&1; then
    echo "fuzzer $name FAILED:"; tail -50 "$work.log"; status=1
  else
    grep -E 'stat::number_of_executed_units' "$work.log" || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
