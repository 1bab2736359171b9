package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables read by this package.
const (
	EnvKafkaBrokers = "COHORTSYNC_TEST_KAFKA_BROKERS"
	EnvRedisURL     = "COHORTSYNC_TEST_REDIS_URL"
	EnvRedisCluster = "COHORTSYNC_TEST_REDIS_CLUSTER"
	EnvIntegration  = "COHORTSYNC_INTEGRATION"
)

// Integration reports whether the real backends are required.
func Integration() bool { return os.Getenv(EnvIntegration) == "1" }

func lookup(t testing.TB, name string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" && Integration() {
		t.Fatalf("%s=1 but %s is not set: start the real services with scripts/services.sh", EnvIntegration, name)
	}
	return v
}

// Kafka returns the bootstrap brokers of the backend under test and whether it
// is the real broker. A kfake cluster is closed when the test ends.
func Kafka(t testing.TB) (brokers []string, realBroker bool) {
	t.Helper()
	if v := lookup(t, EnvKafkaBrokers); v != "" {
		return strings.Split(v, ","), true
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs(), false
}

// RedisBackend is one Redis deployment a test runs against.
type RedisBackend struct {
	Name   string // "miniredis", "standalone" or "cluster"
	Client redis.UniversalClient
	// URL reaches the same server as Client (redis://...); empty for the
	// Cluster, whose masters are listed in Addrs.
	URL   string
	Addrs []string
	// Miniredis is the in-process server behind Client, nil for real ones:
	// its keys expire only when a test calls FastForward.
	Miniredis *miniredis.Miniredis
}

// Redis returns a standalone Redis: the real one when configured, else a
// miniredis closed when the test ends.
func Redis(t testing.TB) RedisBackend {
	t.Helper()
	if v := lookup(t, EnvRedisURL); v != "" {
		opts, err := redis.ParseURL(v)
		if err != nil {
			t.Fatalf("%s: %v", EnvRedisURL, err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return RedisBackend{Name: "standalone", Client: c, URL: v}
	}
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return RedisBackend{Name: "miniredis", Client: c, URL: "redis://" + m.Addr() + "/0", Miniredis: m}
}

// RedisBackends returns every Redis deployment available: the standalone one
// from Redis, plus the Cluster when configured (required in integration mode).
func RedisBackends(t testing.TB) []RedisBackend {
	t.Helper()
	bs := []RedisBackend{Redis(t)}
	if v := lookup(t, EnvRedisCluster); v != "" {
		addrs := strings.Split(v, ",")
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = c.Close() })
		bs = append(bs, RedisBackend{Name: "cluster", Client: c, Addrs: addrs})
	}
	return bs
}

// RedisURL returns a URL for the standalone backend of Redis, for code under
// test that takes a URL rather than a client.
func RedisURL(t testing.TB) string {
	t.Helper()
	if v := lookup(t, EnvRedisURL); v != "" {
		return v
	}
	m := miniredis.RunT(t)
	return "redis://" + m.Addr() + "/0"
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Name returns a name unique to this test run, usable as a Kafka topic, a
// consumer group or a Redis prefix, so tests sharing a real backend never see
// each other's data.
func Name(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(n) > 60 {
		n = n[len(n)-60:]
	}
	return "t-" + n + "-" + hex.EncodeToString(b[:])
}

// Context returns a context cancelled when the test ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d) // not t.Context(): cleanups use it after the test body ends
	t.Cleanup(cancel)
	return ctx
}

// ClosedAddr returns a loopback host:port nothing listens on (for a
// moment: the port was free when it returned), for tests of how clients
// report a refused connection.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// DroppingListener returns the address of a loopback listener that accepts
// connections and closes them at once: a server that is up but broken, for
// tests of how clients report store errors. It is closed when the test ends.
func DroppingListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by cleanup
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Eventually polls cond every 10ms until it holds, failing the test with
// what it waited for once d has passed.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
