#!/usr/bin/env bash
# The chaos suite's full form (make chaos): starts the real services
# (scripts/services.sh), runs ./chaos with COHORTSYNC_CHAOS=full
# (300,000-member cohorts, 6 strikes per scenario, 15 s broker outages),
# writes RELIABILITY.md from what the rows measured (their results are kept
# in chaos/testdata/results.json), stops the services. make test runs the
# short form in its second phase, which writes nothing.
#   TEST_ARGS='-run TestBrokerDown/DuringApply -v' scripts/chaos.sh   # one row; the others keep their results
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
read -r -a test_args <<<"${TEST_ARGS:-}"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-chaos.XXXXXX")
trap 'bash scripts/services.sh stop "$state" || true' EXIT
bash scripts/services.sh start "$state"
# shellcheck source=/dev/null
. "$state/env"
COHORTSYNC_INTEGRATION=1 COHORTSYNC_CHAOS=full COHORTSYNC_CHAOS_REPORT="$root/RELIABILITY.md" go test -count=1 -timeout 120m "${test_args[@]}" ./chaos/
