package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
)

// Consumer is a consumer.Consumer running in a goroutine of its own, as
// the benchmarks drive one: started, watched through its Stats and Redis,
// stopped.
type Consumer struct {
	*consumer.Consumer
	Started time.Time // when Run was called
	stop    context.CancelFunc
	done    chan struct{}
	err     error
}

// StartConsumer starts a consumer of cfg on rdb; a nil cfg.Logger
// discards the consumer's log (the benchmark prints its own progress).
func StartConsumer(ctx context.Context, cfg consumer.Config, rdb redis.UniversalClient, kf *kafkax.Factory) (*Consumer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := consumer.New(cfg, rdb, kf)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	rc := &Consumer{Consumer: c, Started: time.Now(), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		rc.err = c.Run(rctx)
	}()
	return rc, nil
}

// Stop stops the consumer and waits for Run to return; Run's error, if
// it ended for another reason than the stop.
func (c *Consumer) Stop() error {
	c.stop()
	<-c.done
	if c.err != nil && !errors.Is(c.err, context.Canceled) {
		return fmt.Errorf("consumer: %w", c.err)
	}
	return nil
}

// Failed is Run's error once it returned before Stop; nil while it runs.
func (c *Consumer) Failed() error {
	select {
	case <-c.done:
		if c.err == nil {
			return errors.New("consumer: stopped on its own")
		}
		return fmt.Errorf("consumer: %w", c.err)
	default:
		return nil
	}
}

// WaitFor polls cond every interval until it holds, fails, c (if not nil)
// stops, ctx ends or timeout passes: every wait of a benchmark is bounded.
func WaitFor(ctx context.Context, c *Consumer, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if c != nil {
			if err := c.Failed(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-tick.C:
		}
	}
}
