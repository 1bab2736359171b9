#!/usr/bin/env bash
# Lint the module with golangci-lint (config: .golangci.yml). `make lint`, and
# a step of scripts/test.sh. The pinned version is installed on first use,
# built with the Go toolchain that builds the project (so it understands the
# same language version), into a cache shared by every clone and worktree:
#   $GOLANGCI_LINT_DIR, default $(go env GOPATH)/cohortsync-tools/golangci-lint/<version>
# The first install takes a few minutes. Extra arguments go to `golangci-lint run`
# (default ./...).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

version=v2.15.0
dir=${GOLANGCI_LINT_DIR:-$(go env GOPATH)/cohortsync-tools/golangci-lint/$version}
bin=$dir/golangci-lint
gover=$(go env GOVERSION)

# A binary built by an older Go than the one building the project cannot
# load its packages: rebuild when the toolchain changed.
if [[ ! -x $bin ]] || [[ $(cat "$dir/.go-version" 2>/dev/null) != "$gover" ]]; then
  echo "lint.sh: installing golangci-lint $version with $gover into $dir (first run: a few minutes)" >&2
  mkdir -p "$dir"
  GOBIN=$dir GOFLAGS=-buildvcs=false go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
  echo "$gover" >"$dir/.go-version"
fi

if (($#)); then
  exec "$bin" run "$@"
fi
exec "$bin" run ./...
