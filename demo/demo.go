package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/schema"
	"github.com/cohortsync/cohortsync/sdkcompat"
	"github.com/cohortsync/cohortsync/sdkcompat/ldgo"
)

// Config of a demo run.
type Config struct {
	// Snapshots are the cohort CSV exports synced in order. Default the two
	// sample cohorts in testdata/.
	Snapshots []string
	// Env and Segment name the synced segment. Defaults "production" and
	// "amplitude-demo".
	Env, Segment string
	// ShowKeys are the context keys whose membership is shown after each
	// sync. Default a few keys of the sample cohorts, members or not.
	ShowKeys []string
	// Redis is "auto" (redis-server if on PATH, else embedded), "server" or
	// "embedded". Default "auto".
	Redis string
	// Keep keeps Kafka, Redis and the consumer running after the syncs until
	// the context is cancelled, so an SDK can be pointed at the Redis.
	Keep bool
	// StateDir holds the producer's snapshots. Default a temporary directory
	// removed at the end.
	StateDir string
	// Mappings is the mapping file applied and run at the end, as
	// cohortsync serve runs it; its destinations are pointed at the demo's
	// Redis. Default demo/testdata/mappings.yaml; "none" skips that part.
	Mappings string
}

const topic = "cohortsync.membership.v1"

// Validate checks the configuration; defaults are applied first.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch c.Redis {
	case "auto", "server", "embedded":
	default:
		return fmt.Errorf("--redis: %q is not auto, server or embedded", c.Redis)
	}
	for _, p := range c.Snapshots {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--snapshots: %w", err)
		}
	}
	if c.Mappings != "none" {
		if _, err := os.Stat(c.Mappings); err != nil {
			return fmt.Errorf("--mappings: %w", err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if len(c.Snapshots) == 0 {
		c.Snapshots = []string{"testdata/cohort-day1.csv", "testdata/cohort-day2.csv"}
	}
	if c.Env == "" {
		c.Env = "production"
	}
	if c.Segment == "" {
		c.Segment = "amplitude-demo"
	}
	if len(c.ShowKeys) == 0 {
		c.ShowKeys = []string{"user-001@example.com", "user-002@example.com", "user-011@example.com",
			"user-quoted, with comma", "nobody@example.com"}
	}
	if c.Redis == "" {
		c.Redis = "auto"
	}
	if c.Mappings == "" {
		c.Mappings = "demo/testdata/mappings.yaml"
	}
	return c
}

// Run performs the demo, writing what it shows to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	con := &console{w: out}
	defer func() {
		if con.err != nil {
			err = errors.Join(err, fmt.Errorf("write the demo's output: %w", con.err))
		}
	}()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("start in-process Kafka: %w", err)
	}
	cleanups = append(cleanups, kc.Close)
	brokers := kc.ListenAddrs()
	con.printf("Kafka   in-process (kfake) at %s\n", strings.Join(brokers, ","))
	// One client factory for the producer and the consumer, as in
	// cohortsync's process wiring (internal/app); closed after both.
	kf, err := kafkax.New(kafkax.Config{Brokers: brokers})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = kf.Close() }) // Close never fails

	redisURL, stopRedis, kind, err := startRedis(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopRedis)
	con.printf("Redis   %s at %s (prefix %q)\n", kind, redisURL, bigsegments.DefaultPrefix)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	cleanups = append(cleanups, func() { _ = rdb.Close() })

	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "cohortsync-demo-state-")
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() { _ = os.RemoveAll(dir) })
		cfg.StateDir = dir
	}

	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir = topic, cfg.StateDir
	pcfg.TopicPartitions = 3
	if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
		return err
	}

	// Warnings only: the demo's own output tells the story.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ccfg := consumer.Config{Topic: topic, GroupID: "cohortsync-demo", SyncInterval: time.Second, Logger: quiet}
	cons, err := consumer.New(ccfg, rdb, kf)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var consErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		consErr = cons.Run(cctx)
	}()
	defer func() {
		stopConsumer()
		wg.Wait()
		if consErr != nil {
			err = errors.Join(err, fmt.Errorf("consumer: %w", consErr))
		}
	}()
	con.printf("Consumer group %q applying topic %q to Redis\n", ccfg.GroupID, topic)

	for i, path := range cfg.Snapshots {
		con.printf("\n=== Sync %d: %s\n", i+1, path)
		src, err := csvfile.Open(path, csvfile.Options{})
		if err != nil {
			return err
		}
		sum, err := producer.Sync(ctx, pcfg, kf, producer.SyncRequest{
			Env: cfg.Env, Segment: cfg.Segment, Generation: 1, Input: src,
		})
		_ = src.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
		if _, err := sum.WriteTo(con); err != nil {
			return err
		}
		if sum.ExclusionsFile != "" {
			report, err := os.ReadFile(sum.ExclusionsFile)
			if err != nil {
				return err
			}
			con.printf("Left out of the segment (exclusion report):\n%s", indent(string(report)))
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = cons.WaitCaughtUp(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("waiting for the consumer to apply sync %d: %w", i+1, err)
		}
		if err := show(ctx, con, rdb, redisURL, cfg); err != nil {
			return err
		}
	}
	st := cons.Stats()
	con.printf("\nConsumer: %d events applied in %d batches, %d dead-lettered, lag %d\n",
		st.Applied, st.Batches, st.DeadLettered, st.Lag)

	if cfg.Mappings != "none" {
		if err := runMapping(ctx, con, cfg, brokers, redisURL, rdb); err != nil {
			return fmt.Errorf("mapping: %w", err)
		}
	}

	if cfg.Keep {
		con.printf("\nKeeping it running (Ctrl-C to stop). Kafka %s, Redis %s, prefix %q, segment %q generation 1.\n",
			strings.Join(brokers, ","), redisURL, bigsegments.DefaultPrefix, cfg.Segment)
		<-ctx.Done()
	}
	return nil
}

// show prints the segment's metadata and, for each key, what Redis holds and
// what LaunchDarkly's Go SDK evaluates for a flag targeting the segment.
func show(ctx context.Context, con *console, rdb redis.UniversalClient, redisURL string, cfg Config) error {
	ref := schema.Ref(cfg.Segment, 1)
	info, err := segmentstore.Info(ctx, rdb, bigsegments.DefaultPrefix, ref)
	if err != nil {
		return err
	}
	con.printf("\nSegment %s: %d members (last run %s, seq %d)\n", ref, info.Members, info.LastRun, info.LastSeq)
	results, err := ldgo.Evaluate(ctx, sdkcompat.Request{
		RedisURL: redisURL, SegmentKey: cfg.Segment, Generation: 1, ContextKeys: cfg.ShowKeys,
	})
	if err != nil {
		return fmt.Errorf("evaluate with the LaunchDarkly Go SDK: %w", err)
	}
	tw := tabwriter.NewWriter(con, 2, 4, 2, ' ', 0) // con keeps the first write error
	_, _ = fmt.Fprintln(tw, "context key\tRedis include set\tflag value (LaunchDarkly Go SDK)\tbig segments status")
	for _, r := range results {
		inc, _, err := segmentstore.Membership(ctx, rdb, bigsegments.DefaultPrefix, r.Key)
		if err != nil {
			return err
		}
		set := "-"
		if len(inc) > 0 {
			set = strings.Join(inc, ",")
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", r.Key, set, r.Value, r.BigSegmentsStatus)
	}
	return tw.Flush()
}

// console is the demo's output. It keeps the first write error, which Run
// returns, and writes nothing after it: the story is told whole or the
// user is told why not.
type console struct {
	w   io.Writer
	err error
}

func (c *console) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}

// printf writes to c; the error is kept in c.err.
func (c *console) printf(format string, args ...any) { _, _ = fmt.Fprintf(c, format, args...) }

// startRedis starts redis-server on a free loopback port, or miniredis.
func startRedis(ctx context.Context, mode string) (url string, stop func(), kind string, err error) {
	path, lookErr := exec.LookPath("redis-server")
	if mode == "server" && lookErr != nil {
		return "", nil, "", fmt.Errorf("--redis server: %w", lookErr)
	}
	if mode == "embedded" || lookErr != nil {
		m, err := miniredis.Run()
		if err != nil {
			return "", nil, "", fmt.Errorf("start embedded Redis: %w", err)
		}
		return "redis://" + m.Addr() + "/0", m.Close, "embedded (miniredis; install redis-server for the real one)", nil
	}
	port, err := freePort()
	if err != nil {
		return "", nil, "", err
	}
	dir, err := os.MkdirTemp("", "cohortsync-demo-redis-")
	if err != nil {
		return "", nil, "", err
	}
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, "", fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.RemoveAll(dir)
	}
	url = "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer func() { _ = c.Close() }() // the probe's client only
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, "", fmt.Errorf("redis-server on port %d did not answer within 10s (log in %s)", port, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _ := c.Do(ctx, "INFO", "server").Text()
	ver := "redis-server"
	for _, line := range strings.Split(v, "\n") {
		if strings.HasPrefix(line, "redis_version:") {
			ver += " " + strings.TrimSpace(strings.TrimPrefix(line, "redis_version:"))
		}
	}
	return url, stop, ver, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}
