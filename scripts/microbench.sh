#!/usr/bin/env bash
# Reproduces BENCHMARKS.md's component figures: the go test benchmarks of the
# hot paths beside their raw references, on a real Kafka broker and
# redis-server started here (references and subjects in the same run).
#   bash scripts/microbench.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=$(mktemp -d "${TMPDIR:-/tmp}/cohortsync-microbench.XXXXXX")
trap 'bash scripts/services.sh stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
bash scripts/services.sh start "$state" >/dev/null
set -a
# shellcheck source=/dev/null
. "$state/env"
set +a
go test -run '^$' -bench 'Decode|AppendValue' -benchmem ./schema
go test -run '^$' -bench 'Read' -benchmem ./pkg/cohortcsv
go test -run '^$' -bench 'SortSnapshot$|Diff' -benchtime 3x ./pkg/snapshot
go test -run '^$' -bench 'SortSnapshot10MPeakMemory' -benchtime 1x ./pkg/snapshot
go test -run '^$' -bench 'Apply|RawPipelinedSADD|Consume' -benchtime 5x ./consumer
go test -run '^$' -bench 'Publish|RawProduce|Sync' -benchtime 3x ./producer/...
