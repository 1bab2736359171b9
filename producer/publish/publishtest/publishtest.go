package publishtest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// Config returns the default config with a topic of the test's own, a
// retry budget that ends a stuck test in time and a logger that discards
// (kfake's leader elections cause expected retries), and the factory of
// the test's brokers, closed when the test ends.
func Config(t testing.TB) (publish.Config, *kafkax.Factory) {
	t.Helper()
	kf := kafkaxtest.Kafka(t)
	cfg := publish.DefaultConfig()
	cfg.Topic = testenv.Name(t)
	cfg.RetryMaxElapsed = 20 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg, kf
}
