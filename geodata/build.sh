#!/bin/sh
# Compiles the rule-set sources veer ships (geodata/*.json) into binary .srs files with the
# veer CLI, and checks that each result decompiles to the same rules.
#
#   geodata/build.sh [path/to/veer] [output-dir]
#
# Defaults: `veer` from $PATH, output next to the sources in geodata/out/.
set -eu

VEER=${1:-veer}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${2:-"$HERE/out"}
mkdir -p "$OUT"

for src in "$HERE"/*.json; do
  name=$(basename "$src" .json)
  "$VEER" rule-set compile -o "$OUT/$name.srs" "$src"
  # Round trip: decompile and compile again; the two binaries must be identical.
  "$VEER" rule-set decompile -o "$OUT/$name.decompiled.json" "$OUT/$name.srs"
  "$VEER" rule-set compile -o "$OUT/$name.again.srs" "$OUT/$name.decompiled.json"
  cmp "$OUT/$name.srs" "$OUT/$name.again.srs"
  rm -f "$OUT/$name.again.srs" "$OUT/$name.decompiled.json"
  echo "compiled $src -> $OUT/$name.srs"
done
