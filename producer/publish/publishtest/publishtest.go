// Package publishtest gives tests a publish.Config for the test's Kafka
// (pkg/testenv: an in-process kfake, or the real broker of `make test`), so
// that every package publishing in its tests targets it the same way.
package publishtest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// Config returns the default config with the test's brokers, a topic of the
// test's own, a retry budget that ends a stuck test in time and a logger
// that discards: kfake's leader elections cause expected retries.
func Config(t testing.TB) publish.Config {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	cfg := publish.DefaultConfig()
	cfg.KafkaBrokers = brokers
	cfg.Topic = testenv.Name(t)
	cfg.RetryMaxElapsed = 20 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}
