package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// splitListenAddr checks a host:port to listen on; the host may be empty
// (all interfaces) and the port 0 (any).
func splitListenAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number in 0..65535", addr, port)
	}
	return host, n, nil
}

// metricsHandler serves the counters in the Prometheus text format (written
// by hand: a handful of gauges do not justify a client library) and a
// health check that fails when the synchronized_on refresh has stopped
// working for three intervals, which is what an evaluator would notice.
func (c *Consumer) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		s := c.Stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, m := range []struct {
			name, typ, help string
			v               float64
		}{
			{"cohortsync_consumer_applied_total", "counter", "Events applied to Redis.", float64(s.Applied)},
			{"cohortsync_consumer_dead_lettered_total", "counter", "Messages written to the dead-letter topic.", float64(s.DeadLettered)},
			{"cohortsync_consumer_batches_total", "counter", "Batches committed.", float64(s.Batches)},
			{"cohortsync_consumer_stale_total", "counter", "Redelivered messages dropped.", float64(s.Stale)},
			{"cohortsync_consumer_retries_total", "counter", "Retries after transient errors.", float64(s.Retries)},
			{"cohortsync_consumer_generations_total", "counter", "Consumer group generations joined (rebalances).", float64(s.Generations)},
			{"cohortsync_consumer_sync_errors_total", "counter", "Failed lag checks or synchronized_on writes.", float64(s.SyncErrors)},
			{"cohortsync_consumer_lag", "gauge", "Uncommitted messages of the group on the topic (-1 unknown).", float64(s.Lag)},
			{"cohortsync_consumer_last_applied_seconds", "gauge", "Unix time of the last committed batch.", unixSeconds(s.LastApplied)},
			{"cohortsync_consumer_last_sync_seconds", "gauge", "Last big_segments_synchronized_on written, unix time.", unixSeconds(s.LastSync)},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", m.name, m.help, m.name, m.typ, m.name, strconv.FormatFloat(m.v, 'f', -1, 64))
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := c.healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

// healthy fails when the last successful lag check is older than three sync
// intervals (Kafka or Redis unreachable for that long). Lag itself is not
// unhealthy: a consumer catching up is working.
func (c *Consumer) healthy() error {
	c.mu.Lock()
	last := c.lastCheckOK
	c.mu.Unlock()
	limit := 3*c.cfg.SyncInterval + c.cfg.RetryTimeout/10
	if last.IsZero() {
		if c.now().Sub(c.startedAt) > limit {
			return errors.New("no successful lag check since start")
		}
		return nil
	}
	if age := c.now().Sub(last); age > limit {
		return fmt.Errorf("last successful lag check %v ago", age.Round(time.Millisecond))
	}
	return nil
}

// serveMetrics serves on ln until ctx ends, then shuts down within a second.
func (c *Consumer) serveMetrics(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: c.metricsHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("--metrics: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("--metrics: serve: %w", err)
	}
	return nil
}
