package consumer

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/schema"
)

// applier hands decoded events to the layout's one writer,
// segmentstore.Writer: one Writer per client of the route table, each event
// under its environment's prefix. Routes sharing a client share its
// pipeline; distinct clients are written concurrently. Only the apply loop
// calls it.
type applier struct {
	now     func() time.Time
	clients map[redis.UniversalClient]*clientBatch
	pruned  *routeSet // the table clients was last pruned against
	active  []*clientBatch
}

// clientBatch is one client's part of a batch, and the Writer (with its
// reused buffers) that writes it.
type clientBatch struct {
	w       *segmentstore.Writer
	names   []string // the routes it serves, for errors
	changes []segmentstore.Change
	idx     []int // the event index of each change
	inUse   bool

	failures []segmentstore.Failure
	err      error
}

func newApplier(now func() time.Time) *applier {
	return &applier{now: now, clients: map[redis.UniversalClient]*clientBatch{}}
}

// apply runs one attempt at writing evs, each through its environment's
// route in s. It returns the events Redis rejected permanently
// (Failure.Index indexes evs), the indexes of the events whose environment
// has no route, or an error that is transient (retry the batch) or marked
// retry.Permanent (retrying cannot help: stop). An error names the
// destinations that failed; the other destinations' writes have been made,
// and are made again by the retry (they are idempotent).
func (a *applier) apply(ctx context.Context, s *routeSet, evs []*schema.Event) (failures []segmentstore.Failure, unknown []int, err error) {
	a.prune(s)
	a.active = a.active[:0]
	for i, ev := range evs {
		r, ok := s.lookup(ev.Env)
		if !ok {
			unknown = append(unknown, i)
			continue
		}
		cb := a.batchOf(s, r.Client)
		cb.changes = append(cb.changes, segmentstore.Change{
			Prefix:      r.Prefix,
			Segment:     ev.Segment,
			Generation:  ev.Generation,
			ContextKind: ev.ContextKind,
			ContextKey:  ev.ContextKey,
			Remove:      ev.Op != schema.OpAdd,
			Seq:         ev.Seq,
			Run:         ev.Run,
		})
		cb.idx = append(cb.idx, i)
	}
	defer func() {
		for _, cb := range a.active {
			cb.inUse = false
		}
	}()
	run := func(cb *clientBatch) { cb.failures, cb.err = cb.w.Apply(ctx, cb.changes) }
	if len(a.active) == 1 {
		run(a.active[0])
	} else {
		var wg sync.WaitGroup
		for _, cb := range a.active {
			wg.Go(func() { run(cb) })
		}
		wg.Wait()
	}
	var (
		errs  []error
		fatal bool
	)
	for _, cb := range a.active {
		if cb.err != nil {
			errs = append(errs, s.named(cb.names, cb.err))
			fatal = fatal || errors.Is(cb.err, segmentstore.ErrFatal)
			continue
		}
		for _, f := range cb.failures {
			f.Index = cb.idx[f.Index]
			failures = append(failures, f)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if fatal {
			return nil, nil, retry.Permanent(err)
		}
		return nil, nil, err
	}
	slices.SortFunc(failures, func(x, y segmentstore.Failure) int { return x.Index - y.Index })
	return failures, unknown, nil
}

// batchOf returns client's part of the batch being built, starting it if
// needed.
func (a *applier) batchOf(s *routeSet, client redis.UniversalClient) *clientBatch {
	cb := a.clients[client]
	if cb == nil {
		cb = &clientBatch{w: segmentstore.NewWriter(client, a.now)}
		a.clients[client] = cb
	}
	if !cb.inUse {
		cb.inUse = true
		cb.changes, cb.idx = cb.changes[:0], cb.idx[:0]
		for _, tg := range s.targets {
			if tg.client == client {
				cb.names = tg.names
			}
		}
		a.active = append(a.active, cb)
	}
	return cb
}

// prune forgets the Writers of clients s does not name, so that a dropped
// (and closed) client is not kept reachable by its buffers.
func (a *applier) prune(s *routeSet) {
	if a.pruned == s {
		return
	}
	a.pruned = s
	for client := range a.clients {
		if !slices.ContainsFunc(s.targets, func(tg target) bool { return tg.client == client }) {
			delete(a.clients, client)
		}
	}
}

// syncTime writes synchronized_on, for the freshness tracker, under every
// prefix of the current route table: an environment that had no events
// since the last watermark is just as current. Clients are written
// concurrently; a failing destination does not keep the others from being
// marked.
type syncTime struct {
	routes *RouteTable
}

func (st syncTime) SetSynchronizedOn(ctx context.Context, t time.Time) error {
	s := st.routes.acquire()
	defer st.routes.release(s)
	errs := make([]error, len(s.targets))
	var wg sync.WaitGroup
	for i, tg := range s.targets {
		wg.Go(func() {
			if err := segmentstore.NewWriter(tg.client, nil).SetSynchronizedOn(ctx, tg.prefixes, t); err != nil {
				errs[i] = s.named(tg.names, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
