package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestRunSmall runs the whole benchmark on a small cohort, so the command
// behind BENCHMARKS.md cannot rot between measurements.
func TestRunSmall(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	rb := testenv.Redis(t)
	var log bytes.Buffer
	res, err := Run(testenv.Context(t, 2*time.Minute), Config{
		Brokers: brokers, Redis: redisx.Config{URL: rb.URL}, Members: 3000, RedisPipeline: 500,
	}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for name, v := range map[string]float64{
		"raw redis": res.RawRedisSADD, "raw kafka": res.RawKafkaProduce, "producer": res.ProducerSync, "end to end": res.EndToEnd,
	} {
		if v <= 0 {
			t.Errorf("%s rate %v, want > 0", name, v)
		}
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| **end to end: events applied per second**") {
		t.Errorf("table lacks the headline row:\n%s", table.String())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{Redis: redisx.Config{URL: "redis://127.0.0.1:6379/0"}}, "--kafka-brokers: required"},
		{"negative members", Config{Brokers: []string{"127.0.0.1:9092"}, Redis: redisx.Config{URL: "redis://127.0.0.1:6379/0"}, Members: -1}, "--members: must be > 0, got -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
