package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
)

// Bench runs cohortsync bench (bench.Size) against the Kafka of kc and the
// Redis of rc, and prints its table and the consumer's lag over time to
// stdout; progress goes to stderr. Settings were validated by the caller.
func Bench(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config, cfg bench.SizingConfig, stdout, stderr io.Writer) (err error) {
	b, err := start(ctx, p, env, kc, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.down.run()) }()
	setRedisLogger(redisLogger{b.log})
	rdb, err := redisx.Open(rc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rdb.Close()) }()
	res, err := bench.Size(ctx, cfg, rdb, b.kf, stderr)
	if err != nil {
		return err
	}
	caption := fmt.Sprintf("cohortsync bench: %d events, topic %s, Redis prefix %s", res.Events, res.Topic, res.Prefix)
	if err := bench.WriteTable(stdout, caption, res.Rows()); err != nil {
		return err
	}
	if err := say(stdout, "\n"); err != nil {
		return err
	}
	return res.WriteLag(stdout)
}
