#!/usr/bin/env bash
# The chaos suite's long form (make chaos; RELIABILITY.md): starts the real
# services (scripts/services.sh), runs ./chaos with COHORTSYNC_CHAOS=full
# (300,000-member cohorts, 6 strikes per scenario), stops the services.
# make test runs the short form in its second phase.
#   TEST_ARGS='-run TestBrokerOutage -v' scripts/chaos.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
read -r -a test_args <<<"${TEST_ARGS:-}"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-chaos.XXXXXX")
trap 'bash scripts/services.sh stop "$state" || true' EXIT
bash scripts/services.sh start "$state"
# shellcheck source=/dev/null
. "$state/env"
COHORTSYNC_INTEGRATION=1 COHORTSYNC_CHAOS=full go test -count=1 -timeout 120m "${test_args[@]}" ./chaos/
