package testenv

import (
	"os"
	"strconv"
	"testing"
)

// EnvBenchKeys scales the benchmarks that take a cohort size (the
// producer's re-sync and the snapshot store's syncs): they run small by
// default and at full size, e.g. COHORTSYNC_BENCH_KEYS=10000000, on a quiet
// machine.
const EnvBenchKeys = "COHORTSYNC_BENCH_KEYS"

// BenchKeys is the number of keys EnvBenchKeys asks for, def when it is
// unset; a value that is not a number of at least 200 fails the benchmark.
func BenchKeys(b testing.TB, def int) int {
	b.Helper()
	v := os.Getenv(EnvBenchKeys)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 200 {
		b.Fatalf("%s=%q: want a number of keys >= 200", EnvBenchKeys, v)
	}
	return n
}
