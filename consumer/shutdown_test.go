package consumer

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// hangingProxy forwards loopback TCP connections to target until hang is
// called; from then on it swallows what either side sends and answers
// nothing, keeping the connections open: a Redis that stopped answering.
type hangingProxy struct {
	addr string
	hung atomic.Bool
}

func newHangingProxy(t *testing.T, target string) *hangingProxy {
	t.Helper()
	p := &hangingProxy{}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.hung.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	p.addr = testenv.Serve(t, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			return
		}
		var wg sync.WaitGroup
		wg.Go(func() { pipe(c, up) }) // ends when up is closed, below
		pipe(up, c)                   // ends when c is closed, by the test's end
		_ = up.Close()
		wg.Wait()
	})
	return p
}

func (p *hangingProxy) hang() { p.hung.Store(true) }

// proxiedClient returns a client of backend's server through a hanging
// proxy, with the production read timeout (--redis-timeout, 10s) and
// go-redis's retries.
func proxiedClient(t *testing.T, backend testenv.RedisBackend) (redis.UniversalClient, *hangingProxy) {
	t.Helper()
	opts, err := redis.ParseURL(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := newHangingProxy(t, opts.Addr)
	opts.Addr = p.addr
	opts.ReadTimeout, opts.WriteTimeout, opts.DialTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, p
}

// capturedLogger logs at info level to the returned buffer, which the
// test's output gets if it fails. Not to the test's output directly: Run
// abandons goroutines that still hang at its return, and they may log
// after the test has ended.
func capturedLogger(t *testing.T) (*slog.Logger, *testenv.Buffer) {
	buf := &testenv.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})), buf
}

// TestShutdownBoundedWithAHungRedis pins issue 11 item 5 (hung Redis):
// with a Redis that stopped answering mid-batch, Run took the Redis read
// timeout and go-redis's retries to return (18s with a 10s shutdown
// timeout), past Kubernetes' grace period. It now returns within
// ShutdownTimeout plus a second, logs the abandoned batch with its
// offsets, and commits nothing of it.
func TestShutdownBoundedWithAHungRedis(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 2)
	cfg := testConfig(t, ke)
	cfg.ShutdownTimeout = 2 * time.Second
	var logs *testenv.Buffer
	cfg.Logger, logs = capturedLogger(t)
	backend := testenv.Redis(t)
	rdb, proxy := proxiedClient(t, backend)
	dropPrefix(t, backend.Client, cfg.RedisPrefix) // not through the proxy, hung at the end
	c := newMember(t, cfg, ke, rdb)
	ke.produce(t, messages(churn(40)...)...)
	c.waitCaughtUp(t)
	committed := ke.committed(t, cfg.GroupID)

	proxy.hang()
	ke.produce(t, messages(churn(40)...)...)
	testenv.Eventually(t, 20*time.Second, "a batch in flight on the hung Redis", func() bool { return c.applying.Load() > 0 })
	began := time.Now()
	if err := c.stop(); err != nil {
		t.Errorf("Run = %v, want nil after a cancellation", err)
	}
	if took, limit := time.Since(began), cfg.ShutdownTimeout+time.Second; took > limit {
		t.Errorf("Run returned %v after cancellation, want at most the shutdown timeout plus a second (%v)", took, limit)
	}
	for _, want := range []string{"batch abandoned uncommitted", "messages=", "offsets="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if got := ke.committed(t, cfg.GroupID); !mapsEqual(got, committed) {
		t.Errorf("committed offsets %v, want %v: nothing of the abandoned batch", got, committed)
	}
}

// TestShutdownBoundedDuringAPendingRebalance pins issue 11 item 5
// (rebalance): a member stopped while the broker held its JoinGroup,
// waiting for a member stuck on a hung Redis to rejoin, took up to the
// rebalance timeout to return (27s seen), because kafka-go's
// ConsumerGroup.Close waits for the join. It now returns within
// ShutdownTimeout plus a second, having left the group. The member that
// joins meanwhile logs what its join waits for instead of waiting in
// silence.
func TestShutdownBoundedDuringAPendingRebalance(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 4)
	backend := testenv.Redis(t)
	cfg := testConfig(t, ke)
	cfg.BatchSize = 20
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.Logger, _ = capturedLogger(t)
	ke.produce(t, messages(churn(4000)...)...)
	dropPrefix(t, backend.Client, cfg.RedisPrefix)

	var aLogs, cLogs *testenv.Buffer
	cfgA := cfg
	cfgA.Logger, aLogs = capturedLogger(t)
	// The first member applies slowly, so that a backlog is left for the
	// second.
	opts, err := redis.ParseURL(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	slowRedis := redis.NewClient(opts)
	t.Cleanup(func() { _ = slowRedis.Close() })
	slowRedis.AddHook(slowApply(30 * time.Millisecond))
	a := newMember(t, cfgA, ke, slowRedis)
	testenv.Eventually(t, 20*time.Second, "the first member to apply", func() bool { return a.Stats().Applied > 0 })

	// The second member's Redis hangs once it is applying: when the next
	// rebalance starts, it cannot rejoin before its read times out.
	stuckRedis, proxy := proxiedClient(t, backend)
	b := newMember(t, cfg, ke, stuckRedis)
	testenv.Eventually(t, 30*time.Second, "the second member to apply", func() bool { return b.Stats().Applied > 0 })
	proxy.hang()
	testenv.Eventually(t, 20*time.Second, "a batch of the second member in flight on the hung Redis", func() bool { return b.applying.Load() > 0 })

	// A third member joins: a rebalance the stuck member holds up.
	endedBefore := strings.Count(aLogs.String(), "generation ended")
	cfgC := cfg
	cfgC.Logger, cLogs = capturedLogger(t)
	cc, err := New(cfgC, backend.Client, ke.kf)
	if err != nil {
		t.Fatal(err)
	}
	cc.joinWait = 500 * time.Millisecond
	launch(t, cc)
	testenv.Eventually(t, 20*time.Second, "the joining member to log what it waits for", func() bool {
		return strings.Contains(cLogs.String(), "waiting to join the consumer group")
	})
	// The first member notices the rebalance at a heartbeat, ends its
	// generation and sends its JoinGroup, which the broker holds too.
	testenv.Eventually(t, 20*time.Second, "the first member's generation to end", func() bool {
		return strings.Count(aLogs.String(), "generation ended") > endedBefore
	})
	time.Sleep(300 * time.Millisecond)

	began := time.Now()
	if err := a.stop(); err != nil {
		t.Errorf("Run = %v, want nil after a cancellation", err)
	}
	if took, limit := time.Since(began), cfg.ShutdownTimeout+time.Second; took > limit {
		t.Errorf("Run returned %v after cancellation, want at most the shutdown timeout plus a second (%v)", took, limit)
	}
	if !strings.Contains(aLogs.String(), "left the consumer group") {
		t.Errorf("the stopped member's logs do not say it left the group")
	}
}

// newMember runs a consumer of cfg on rdb, joining ke's group.
func newMember(t *testing.T, cfg Config, ke *kafkaEnv, rdb redis.UniversalClient) *running {
	t.Helper()
	c, err := New(cfg, rdb, ke.kf)
	if err != nil {
		t.Fatal(err)
	}
	return launch(t, c)
}
