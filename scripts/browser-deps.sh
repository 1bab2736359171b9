#!/usr/bin/env bash
# Installs Debian's chromium (the headless browser the web console's test in
# control/console drives with chromedp) when it is missing, and prints its
# path. Run as root, or through sudo like scripts/redis.sh. Used by
# scripts/test.sh before the Go tests; the console test then fails, never
# skips, when no browser is found (COHORTSYNC_NO_BROWSER=1 skips it on purpose).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

find_browser() { command -v chromium || command -v chromium-browser; }

if ! find_browser >/dev/null; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log=${TMPDIR:-/tmp}/cohortsync-chromium-install.log
  # The lock timeout lets this wait for another apt-get (e.g. a provisioning one) to finish.
  if ! { "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
      install -y --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "installing chromium failed; full log: $log"
  fi
  find_browser >/dev/null || die "chromium still missing after apt-get install"
fi
find_browser
