#!/usr/bin/env bash
# make bench: starts a real Kafka broker and redis-server (scripts/services.sh),
# builds the cohortsync binary (the producer runs as its own process), runs
# bench/cmd/bench against them -- issue 12's targets beside their references in
# the same run, one Markdown table on stdout, progress on stderr -- and stops
# the services. Arguments go to bench/cmd/bench, e.g.
#   bash scripts/bench.sh --members 100000 --large 300000   # a small run, about a minute
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-bench.XXXXXX")
trap 'bash scripts/services.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
go build -o "$state/cohortsync" ./cmd/cohortsync
go build -o "$state/bench" ./bench/cmd/bench
bash scripts/services.sh start "$state" >/dev/null
# shellcheck source=/dev/null
. "$state/env"
"$state/bench" --kafka-brokers "$COHORTSYNC_TEST_KAFKA_BROKERS" \
  --redis-url "$COHORTSYNC_TEST_REDIS_URL" --cohortsync-bin "$state/cohortsync" "$@"
