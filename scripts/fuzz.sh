#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzX in a _test.go file) for
# FUZZTIME each: CI runs a short form (scripts/test.sh, 4s a target), `make
# fuzz` the long one (60s a target). A failing input is written under the
# package's testdata/fuzz/ by go test; commit it with the fix, so that the
# plain test run replays it from then on.
#   FUZZTIME=10m bash scripts/fuzz.sh            # every target, 10 minutes each
#   FUZZTIME=1m bash scripts/fuzz.sh FuzzParse   # targets whose name matches
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${FUZZTIME:-60s}
filter=${1:-}
found=0
while IFS=: read -r file _ line; do
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  [[ -z $filter || $name == *"$filter"* ]] || continue
  pkg=$(dirname "$file")
  found=$((found + 1))
  echo "fuzz.sh: $pkg $name ($fuzztime)" >&2
  # -run '^$' skips the package's other tests; the seed corpus still runs.
  if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "fuzz.sh: $name in $pkg failed; the input is under $pkg/testdata/fuzz/$name" >&2
    exit 1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
((found)) || { echo "fuzz.sh: no fuzz target matches '$filter'" >&2; exit 1; }
echo "fuzz.sh: $found targets, $fuzztime each: no failure" >&2
