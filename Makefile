# The two commands a newcomer needs: `make demo` and `make test`.
GO ?= go

.PHONY: demo test test-fast fuzz chaos lint build bench services-start services-stop clean

## demo: sync a sample cohort end to end on an in-process Kafka and a local or embedded Redis
demo:
	$(GO) run ./demo/cmd/demo

## test: unit tests on the fast backends, then the same suite on real Kafka + Redis (started and stopped here)
test:
	bash scripts/test.sh

## test-fast: only the fast backends (kfake, miniredis); installs the Node SDK the sdkcompat tests use and chromium
test-fast:
	bash scripts/node-deps.sh
	bash scripts/browser-deps.sh >/dev/null
	$(GO) test -race -count=1 ./...

## fuzz: every fuzz target for FUZZTIME each (default 60s; CI runs 4s each inside make test)
fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash scripts/fuzz.sh

## chaos: the fault-injection suite (RELIABILITY.md), long form, on real Kafka and Redis started here
chaos:
	bash scripts/chaos.sh

## lint: golangci-lint with .golangci.yml (installs the pinned version on first use)
lint:
	bash scripts/lint.sh

## build: the cohortsync binary into ./bin
build:
	$(GO) build -o bin/cohortsync ./cmd/cohortsync

## bench: issue 12's targets beside their references on real Kafka and Redis started here, one table (BENCHMARKS.md); BENCH_ARGS="--members 100000 --large 300000" for a small run
bench:
	bash scripts/bench.sh $(BENCH_ARGS)

services-start:
	bash scripts/services.sh start
services-stop:
	bash scripts/services.sh stop

clean:
	rm -rf bin .run
