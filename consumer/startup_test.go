package consumer

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestStartFailsFastOnAWrongAddress pins issue 11, item 3: with a wrong
// Redis or Kafka address the consumer used to retry silently for the
// whole RetryTimeout (5 minutes). It now gives up after StartupTimeout,
// with the address and the cause in the error.
func TestStartFailsFastOnAWrongAddress(t *testing.T) {
	closed := testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name    string
		redis   string // "" for the test's Redis
		brokers []string
		want    []string
	}{
		{name: "redis", redis: closed, want: []string{"--redis-url/--redis-cluster-addrs", closed, "connection refused"}},
		{name: "kafka", brokers: []string{closed}, want: []string{"--topic", closed, "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testenv.Redis(t).Client
			if tc.redis != "" {
				c := redis.NewClient(&redis.Options{Addr: tc.redis, MaxRetries: -1})
				t.Cleanup(func() { _ = c.Close() })
				rdb = c
			}
			kf := kafkaxtest.Kafka(t)
			if tc.brokers != nil {
				kf = kafkaxtest.Factory(t, tc.brokers...)
			}
			c, err := New(Config{Topic: testenv.Name(t), StartupTimeout: time.Second, RetryTimeout: time.Hour, Logger: testLogger(t)}, rdb, kf)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = c.Run(testenv.Context(t, 30*time.Second))
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Run took %v to fail, want about the 1s StartupTimeout", took)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Run = %v, want an error with %q", err, w)
				}
			}
		})
	}
}
