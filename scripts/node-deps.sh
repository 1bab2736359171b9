#!/usr/bin/env bash
# Installs what the tests need from npm: LaunchDarkly's Node SDK and its
# Redis store, pinned by sdkcompat/node/package-lock.json (the sdkcompat
# tests evaluate flags with them). Skips the install when node_modules
# already holds exactly what the lockfile pins (npm's own record of it:
# node_modules/.package-lock.json). Used by scripts/test.sh and make test-fast.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/sdkcompat/node
[[ -f $dir/package.json ]] || exit 0
if ! node -e '
  const d = process.argv[1], want = require(d + "/package-lock.json").packages,
    have = require(d + "/node_modules/.package-lock.json").packages;
  delete want[""];
  process.exit(JSON.stringify(want) === JSON.stringify(have) ? 0 : 1);
' "$dir" 2>/dev/null; then
  npm ci --no-audit --no-fund --prefix "$dir" >/dev/null
fi
