package runwatch

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// The behaviour (published, set aside, applied) is tested end to end on
// Kafka and Redis in internal/app (TestRunAppliedOnlyWhenTheConsumerCommitted).

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{GroupID: "cohortsync-consumer"} }, []testenv.ValidateCase[Config]{
		{Name: "defaults", Change: func(*Config) {}},
		{Name: "no consumer group", Change: func(c *Config) { c.GroupID = "" }, Want: `--group-id: required, want a Kafka consumer group`},
		{Name: "an interval too short to be a poll", Change: func(c *Config) { c.Interval = time.Millisecond }, Want: `--apply-check-interval="1ms": want a duration of at least 10ms`},
		{Name: "a negative batch", Change: func(c *Config) { c.Batch = -1 }, Want: `--apply-check-batch="-1": want a positive integer`},
	})
}
