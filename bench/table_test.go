package bench

import (
	"bytes"
	"errors"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestBoundMet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bound Bound
		v     float64
		want  bool
	}{
		{"at least, above", Bound{Limit: 0.5}, 0.6, true},
		{"at least, equal", Bound{Limit: 0.5}, 0.5, true},
		{"at least, below", Bound{Limit: 0.5}, 0.49, false},
		{"at most, below", Bound{Max: true, Limit: 8}, 7.9, true},
		{"at most, equal", Bound{Max: true, Limit: 8}, 8, true},
		{"at most, above", Bound{Max: true, Limit: 8}, 8.01, false},
		{"no bound", Bound{}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.bound.Met(tc.v); got != tc.want {
				t.Fatalf("%+v.Met(%v) = %v, want %v", tc.bound, tc.v, got, tc.want)
			}
		})
	}
}

func TestRowStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  Row
		want string
	}{
		{"met", Row{Figure: 0.6, Bound: Bound{Limit: 0.5}}, "pass"},
		{"missed", Row{Figure: 9, Bound: Bound{Max: true, Limit: 8}}, "FAIL"},
		{"no target", Row{Figure: 3}, "—"},
		// A row not measured fails even when its zero figure would meet
		// an upper bound.
		{"not measured", Row{Bound: Bound{Max: true, Limit: 8}, Err: errors.New("boom")}, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.row.Status(); got != tc.want {
				t.Fatalf("Status() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPassed(t *testing.T) {
	met := Row{Figure: 1, Bound: Bound{Limit: 0.5}}
	for _, tc := range []struct {
		name string
		rows []Row
		want bool
	}{
		{"all met", []Row{met, {Figure: 2}}, true},
		{"one missed", []Row{met, {Figure: 0.1, Bound: Bound{Limit: 0.5}}}, false},
		{"one not measured", []Row{met, {Err: errors.New("no redis-cli")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Passed(tc.rows); got != tc.want {
				t.Fatalf("Passed() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWriteTable pins the table make bench prints: every unit, a scaled
// bound's note, a row not measured, and a cell holding the column
// separator.
func TestWriteTable(t *testing.T) {
	rows := []Row{
		{Target: "1a", Measure: "steady apply", Subject: "100000 events/s", Reference: "redis-cli --pipe: 180000 SADD/s",
			Figure: 100000.0 / 180000, Unit: Ratio, Bound: Bound{Limit: 0.5}},
		{Target: "2a", Measure: "first sync", Subject: "12.5 s", Figure: 12.5, Unit: Seconds,
			Bound: Bound{Max: true, Limit: 0.4, Note: "8 s at 2,000,000, scaled"}},
		{Target: "2c", Measure: "producer peak RSS", Subject: "180 MiB", Figure: 180.4, Unit: MiB, Bound: Bound{Max: true, Limit: 200}},
		{Target: "5", Measure: "SDK lookup p99", Unit: Ratio, Bound: Bound{Max: true, Limit: 1.3},
			Err: errors.New("LaunchDarkly Go SDK did not initialise\nwithin 10s | timeout")},
		{Measure: "events/s of a sizing run", Subject: "90000 events/s", Reference: "raw SADD: 200000/s", Figure: 0.45, Unit: Ratio},
		{Measure: "produced", Subject: "300000 events/s"},
	}
	var got bytes.Buffer
	if err := WriteTable(&got, "make bench: --members 1000", rows); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, *update, filepath.Join("testdata", "table.golden.md"), got.Bytes())
}

// TestWriteIncludeSADDs pins the redis-cli --pipe input: RESP arrays of
// SADD, the include key built as pkg/bigsegments builds it.
func TestWriteIncludeSADDs(t *testing.T) {
	var got bytes.Buffer
	if err := WriteIncludeSADDs(&got, "launchdarkly", "bench-segment.g1", 0, 3, Key); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, *update, filepath.Join("testdata", "sadd.golden.resp"), got.Bytes())
}

func TestSizingConfigValidate(t *testing.T) {
	testenv.RunValidate(t, DefaultSizing, []testenv.ValidateCase[SizingConfig]{
		{Name: "defaults", Change: func(*SizingConfig) {}, Want: ""},
		{Name: "named topic and prefix", Change: func(c *SizingConfig) { c.Topic, c.Prefix = "my-bench", "my-bench" }, Want: ""},
		{Name: "no events", Change: func(c *SizingConfig) { c.Events = 0 }, Want: `--events="0": want a positive number of events`},
		{Name: "no reference", Change: func(c *SizingConfig) { c.ReferenceEvents = -1 },
			Want: `--reference-events="-1": want a positive number of include sets`},
		{Name: "bad topic", Change: func(c *SizingConfig) { c.Topic = "a topic" },
			Want: `--topic="a topic": want ` + kafkax.TopicForm},
		{Name: "no partitions", Change: func(c *SizingConfig) { c.Partitions = 0 }, Want: `--topic-partitions="0": want a positive number of partitions`},
		{Name: "no replication", Change: func(c *SizingConfig) { c.ReplicationFactor = 0 },
			Want: `--topic-replication-factor="0": want a positive replication factor`},
		{Name: "the SDKs' prefix", Change: func(c *SizingConfig) { c.Prefix = "launchdarkly" },
			Want: `--redis-prefix="launchdarkly": want a prefix of the benchmark's own, not the one the SDKs read by default`},
		{Name: "blank prefix", Change: func(c *SizingConfig) { c.Prefix = " bench" },
			Want: `--redis-prefix=" bench": want a prefix without blanks at either end`},
		{Name: "huge batch", Change: func(c *SizingConfig) { c.ConsumerBatch = consumer.MaxBatchSize + 1 },
			Want: `--consumer-batch-size="100001": want an integer between 0 (the consumer's default) and 100000`},
		{Name: "too many appliers", Change: func(c *SizingConfig) { c.ConsumerAppliers = consumer.MaxAppliers + 1 },
			Want: `--consumer-appliers="17": want an integer between 0 (the consumer's default) and 16`},
		{Name: "fast lag", Change: func(c *SizingConfig) { c.LagInterval = time.Millisecond },
			Want: `--lag-interval="1ms": want a duration between 10ms and 1m0s`},
		{Name: "no timeout", Change: func(c *SizingConfig) { c.Timeout = 0 }, Want: `--timeout="0s": want a positive duration`},
	})
}

// TestPipeWithoutRedisCLI: without redis-cli the reference says what is
// missing rather than failing obscurely.
func TestPipeWithoutRedisCLI(t *testing.T) {
	_, err := Pipe(t.Context(), "no-such-redis-cli", "redis://127.0.0.1:1/0", "unused.resp", 1)
	if !errors.Is(err, ErrNoRedisCLI) {
		t.Fatalf("Pipe = %v, want ErrNoRedisCLI", err)
	}
}
