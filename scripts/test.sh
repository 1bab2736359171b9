#!/usr/bin/env bash
# The project's test command (`make test`, CI via .ci/run):
#   1. npm ci for sdkcompat/node (LaunchDarkly's Node SDK, used by tests) and
#      Debian's chromium for the web console's browser tests
#      (scripts/browser-deps.sh);
#   2. go vet, golangci-lint (scripts/lint.sh), then unit tests with -race on
#      the fast in-process backends (kfake, miniredis): no COHORTSYNC_TEST_*
#      variables set;
#   3. every fuzz target for a few seconds (scripts/fuzz.sh);
#   4. the same tests again, with -race too, against real services (Kafka
#      broker, Redis standalone + cluster) started by scripts/services.sh,
#      stopped on exit.
# Extra `go test` arguments: TEST_ARGS='-run TestX -v' scripts/test.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

read -r -a test_args <<<"${TEST_ARGS:-}"
step=setup
state=
# begin STEP: name the step for the failure message and report how long the
# previous one took (CI time is a budget: about 30 minutes in all).
step_start=$SECONDS
begin() {
  [[ $step == setup ]] || echo "test.sh: $step: $((SECONDS - step_start))s" >&2
  step=$1 step_start=$SECONDS
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  ((rc)) || begin "stop services"
  if [[ -n $state ]]; then
    bash scripts/services.sh stop "$state" || echo "test.sh: warning: stopping services failed (state: $state)" >&2
    ((rc)) || rm -rf "$state" # keep logs of a failed run
  fi
  if ((rc)); then
    echo "test.sh: FAIL (step: $step, exit $rc)${state:+; service logs in $state}"
  else
    echo "test.sh: PASS (vet, lint, unit tests with -race, integration tests with -race on real Kafka and Redis)"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The unit run must not see real services, whatever the caller's environment holds.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^COHORTSYNC_(TEST_[A-Z0-9_]*|INTEGRATION)=' || true)

begin "npm ci (sdkcompat/node)"
bash scripts/node-deps.sh
begin "chromium (control/console's browser tests)"
bash scripts/browser-deps.sh >/dev/null

begin "go vet"
go vet ./...
begin "golangci-lint"
bash scripts/lint.sh
begin "go test -race (in-process backends)"
go test -race -count=1 "${test_args[@]}" ./...

begin "fuzz targets, short form (make fuzz runs them longer)"
FUZZTIME=${FUZZTIME:-4s} bash scripts/fuzz.sh

begin "start services"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-services.XXXXXX")
bash scripts/services.sh start "$state"
# shellcheck source=/dev/null
. "$state/env"
export COHORTSYNC_INTEGRATION=1
begin "go test -race (real Kafka and Redis)"
go test -race -count=1 -p 1 -timeout 30m "${test_args[@]}" ./...
