#!/usr/bin/env bash
# Reproduces BENCHMARKS.md's end-to-end figures: starts a real Kafka broker and
# redis-server (scripts/services.sh), runs the bench command against them with
# the raw references in the same run, and stops the services.
#   bash scripts/bench.sh [--members N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-bench.XXXXXX")
trap 'bash scripts/services.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
bash scripts/services.sh start "$state" >/dev/null
# shellcheck source=/dev/null
. "$state/env"
go run ./bench/cmd/bench --kafka-brokers "$COHORTSYNC_TEST_KAFKA_BROKERS" \
  --redis-url "$COHORTSYNC_TEST_REDIS_URL" "$@"
