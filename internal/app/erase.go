package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/erase"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// Erase removes contextKey from every segment of env's destination
// through the event path (erase.Eraser) and writes its receipt, as text
// or JSON (asJSON). The Kafka, lease and history settings are those of
// segments add.
func Erase(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg mappingrun.Config, opts RunOptions, ecfg erase.Config, envName, contextKey string, asJSON bool, stdout, stderr io.Writer) error {
	cfg.Lease.Prefix = sc.Prefix // the runs' leases and counters
	r, err := startRuns(ctx, p, env, kc, rc, sc, cfg, opts.Retention, stderr)
	if err != nil {
		return err
	}
	return errors.Join(runErase(ctx, r, cfg, ecfg, envName, contextKey, asJSON, stdout), r.down.run())
}

func runErase(ctx context.Context, r *runs, cfg mappingrun.Config, ecfg erase.Config, envName, contextKey string, asJSON bool, stdout io.Writer) error {
	e, err := newEraser(r.control, r.store, r.dests, segmentlease.Config{Prefix: cfg.Lease.Prefix, Timeout: cfg.Lease.Timeout, TTL: cfg.Lease.TTL})
	if err != nil {
		return err
	}
	if e.Locker, err = segmentlease.NewLocker(r.control, cfg.Lease); err != nil {
		return err
	}
	if e.Seq, err = segmentlease.NewSeqAllocator(r.control, cfg.Lease); err != nil {
		return err
	}
	if err := publish.EnsureTopics(ctx, cfg.Producer.Config, r.kf); err != nil {
		return err
	}
	pub, err := publish.New(cfg.Producer.Config, r.kf)
	if err != nil {
		return err
	}
	defer func() { _ = pub.Close() }() // after the erase's Wait: nothing in flight
	d, err := membership.Destination(ctx, r.store, envName)
	if err != nil {
		return err
	}
	e.Streams, e.Topic, e.Log, e.Config = pub, cfg.Producer.Topic, r.log, ecfg
	e.Ends = func(ctx context.Context) (map[int]int64, error) { return freshness.Ends(ctx, r.pub.kc, r.pub.topic) }
	e.History = &trackedHistory{h: r.history, pub: r.pub, before: r.pub.before(ctx, []string{d.Name})}
	rec, err := e.Erase(ctx, envName, contextKey)
	if rec.ID == "" {
		return err
	}
	if asJSON {
		return errors.Join(err, writeJSONValue(stdout, rec))
	}
	return errors.Join(err, writeReceipt(stdout, rec))
}

// newEraser is an Eraser reading the catalog, destinations, erased list
// and receipts (what erase show needs); Erase also needs the lease,
// sequence and publishing parts.
func newEraser(control redis.UniversalClient, cat *catalogstore.Store, dests *destClients, lease segmentlease.Config) (*erase.Eraser, error) {
	erased, err := segmentlease.NewErased(control, lease)
	if err != nil {
		return nil, err
	}
	receipts, err := erase.NewStore(control, lease)
	if err != nil {
		return nil, err
	}
	return &erase.Eraser{Catalog: cat, Connect: dests.connect, Erased: erased, Receipts: receipts}, nil
}

// EraseShow writes receipt id with the erase's state now, as text or JSON.
func EraseShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), id string, asJSON bool, stdout io.Writer) error {
	return withControl(rc, sc, env, func(cat *catalogstore.Store, h *runstore.Store, rdb redis.UniversalClient, dests *destClients) error {
		e, err := newEraser(rdb, cat, dests, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		shown, err := e.Show(ctx, id, h)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSONValue(stdout, shown)
		}
		if err := writeReceipt(stdout, shown.Receipt); err != nil {
			return err
		}
		still := "none"
		if len(shown.StillIncluded) > 0 {
			still = strings.Join(shown.StillIncluded, ", ")
		}
		if shown.Unreadable != "" {
			still = "unknown: " + shown.Unreadable
		}
		return say(stdout, "now\n  run status    %s\n  still in      %s\n  erased list   %s\n", orDash(shown.RunStatus), still,
			map[bool]string{true: "listed (syncs exclude it)", false: "not listed (forgotten: syncs may add it again)"}[shown.Listed])
	})
}

// writeReceipt writes an erase receipt for people.
func writeReceipt(stdout io.Writer, r erase.Receipt) error {
	removed := "none"
	if from := r.RemovedFrom(); len(from) > 0 {
		removed = strings.Join(from, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "erase receipt %s\n", r.ID)
	fmt.Fprintf(&b, "  environment   %s (destination %s, prefix %s)\n", r.Environment, r.Destination, r.Prefix)
	fmt.Fprintf(&b, "  context key   %s (hash %s)\n", r.ContextKey, r.ContextHash)
	fmt.Fprintf(&b, "  requested     %s\n", r.Requested.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "  published     %s\n", timeOrDash(r.Published))
	fmt.Fprintf(&b, "  removed from  %s\n", removed)
	for _, s := range r.Segments {
		fmt.Fprintf(&b, "    %s seq %d (was a member: %v)\n", s.Ref, s.Seq, s.WasMember)
	}
	fmt.Fprintf(&b, "  barrier       topic %s, offsets %v (applied once the consumer group has committed them)\n", r.Topic, r.Barrier)
	if r.Error != "" {
		fmt.Fprintf(&b, "  error         %s\n", r.Error)
	}
	return say(stdout, "%s", b.String())
}

// EraseForget takes contextKey off env's erased-keys list and says whether
// it was on it.
func EraseForget(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), envName, contextKey string, stdout io.Writer) error {
	return withControl(rc, sc, env, func(cat *catalogstore.Store, _ *runstore.Store, rdb redis.UniversalClient, dests *destClients) error {
		e, err := newEraser(rdb, cat, dests, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		was, err := e.Forget(ctx, envName, contextKey)
		if err != nil {
			return err
		}
		if !was {
			return say(stdout, "context key %q was not on the erased-keys list of %s\n", contextKey, envName)
		}
		return say(stdout, "context key %q is off the erased-keys list of %s: syncs may add it again\n", contextKey, envName)
	})
}
