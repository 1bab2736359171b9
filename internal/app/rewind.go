package app

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/cohortsync/cohortsync/consumer/rewind"
	"github.com/cohortsync/cohortsync/internal/kafkax"
)

// Rewind moves the stopped consumer group back on topic to from (the
// start, offsets or a time: cohortsync replay), so that its next consumers
// replay the topic from there into Redis, and prints where each partition
// it moved now starts.
func Rewind(ctx context.Context, kc kafkax.Config, topic, group string, from rewind.Start, stdout io.Writer) (err error) {
	kf, err := kafkax.New(kc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, kf.Close()) }()
	to, err := rewind.To(ctx, kf.Client(30*time.Second), topic, group, from)
	if err != nil {
		return err
	}
	if err := say(stdout, "consumer group %s rewound on topic %s to %s; its next consumers replay it:\n", group, topic, from); err != nil {
		return err
	}
	for _, p := range slices.Sorted(maps.Keys(to)) {
		if err := say(stdout, "  partition %d from offset %d\n", p, to[p]); err != nil {
			return err
		}
	}
	return nil
}
