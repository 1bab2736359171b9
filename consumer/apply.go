package consumer

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
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
// pipeline; distinct clients are written concurrently. Each stream has its
// own; only its apply loop calls it.
type applier struct {
	now     func() time.Time
	ids     *storeIDs // nil: store ids not claimed (tests of the write path alone)
	lanes   int       // pipelines in flight per client (Config.Pipelines)
	seed    maphash.Seed
	clients map[redis.UniversalClient]*clientBatch
	pruned  *routeSet // the table clients was last pruned against
	active  []*clientBatch
}

// clientBatch is one client's part of a batch, split into lanes by context
// key, each written by a Writer of its own (with its reused buffers) on a
// connection of its own at the same time: while Redis runs one lane's
// pipeline, the client builds and reads the others', so neither waits for
// the other. A context key's changes all go to one lane, in batch order,
// which is all the order the layout needs: different keys touch different
// include sets and different fields of a member index, and the segment
// metadata only moves forward.
type clientBatch struct {
	client  redis.UniversalClient
	lanes   []lane
	names   []string // the routes it serves, for errors
	changes []segmentstore.Change
	idx     []int // the event index of each change
	inUse   bool

	failures []segmentstore.Failure
	err      error
	skipped  bool // set aside in this attempt

	// Set-aside state of the destination, across batches.
	failingSince time.Time // first failure of the current streak; zero when writing
	unavailable  bool      // set aside until a probe answers
	nextProbe    time.Time
	lastErr      error // why it is unavailable
}

// lane is one pipeline's part of a clientBatch.
type lane struct {
	w        *segmentstore.Writer
	changes  []segmentstore.Change
	idx      []int // the clientBatch index of each change
	failures []segmentstore.Failure
	err      error
}

// newApplier returns an applier writing each client's part of a batch in
// lanes pipelines at once (at least 1).
func newApplier(now func() time.Time, lanes int) *applier {
	return &applier{now: now, lanes: max(lanes, 1), seed: maphash.MakeSeed(), clients: map[redis.UniversalClient]*clientBatch{}}
}

// applied is what one attempt of apply did besides writing.
type applied struct {
	// failures are the events Redis rejected permanently (Failure.Index
	// indexes evs), sorted.
	failures []segmentstore.Failure
	// unknown are the indexes of the events whose environment has no
	// route.
	unknown []int
	// setAside are the indexes of the events of destinations set aside
	// (RouteTableOptions.SetAside), and setAsideNames those destinations.
	setAside      []int
	setAsideNames []string
}

// apply runs one attempt at writing evs, each through its environment's
// route in s, or returns an error that is transient (retry the batch) or
// marked retry.Permanent (retrying cannot help: stop). An error names the
// destinations that failed; the other destinations' writes have been made,
// and are made again by the retry (they are idempotent). With set-aside on
// (RouteTable.setAsideAfter), a destination failing for that long, or with
// an error retrying cannot fix, is set aside instead of failing the batch.
func (a *applier) apply(ctx context.Context, s *routeSet, evs []*schema.Event, setAsideAfter time.Duration) (res applied, err error) {
	a.prune(s)
	a.active = a.active[:0]
	for i, ev := range evs {
		r, ok := s.lookup(ev.Env)
		if !ok {
			res.unknown = append(res.unknown, i)
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
	run := func(cb *clientBatch) {
		cb.failures, cb.err, cb.skipped = nil, nil, false
		if setAsideAfter > 0 && cb.unavailable && !cb.probe(ctx, setAsideAfter) {
			cb.skipped = true
			return
		}
		if a.ids != nil {
			// The id goes in before the first write to a store, not with its
			// first stamp: a loss between the two (a backlog applied, then
			// FLUSHALL, before the consumer caught up) would otherwise be
			// claimed as a new store and marked current.
			if cb.err = a.ids.claimUnseen(ctx, cb.client, cb.changes, strings.Join(cb.names, ", ")); cb.err != nil {
				return
			}
		}
		cb.failures, cb.err = a.write(ctx, cb)
	}
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
		if cb.err != nil && ctx.Err() == nil && setAsideAfter > 0 && cb.failedFor(setAsideAfter) {
			cb.unavailable, cb.nextProbe, cb.lastErr = true, time.Now().Add(setAsideAfter), cb.err
			cb.skipped, cb.err = true, nil
		}
		switch {
		case cb.skipped:
			res.setAside = append(res.setAside, cb.idx...)
			res.setAsideNames = append(res.setAsideNames, cb.names...)
			continue
		case cb.err != nil:
			errs = append(errs, s.named(cb.names, cb.err))
			fatal = fatal || errors.Is(cb.err, segmentstore.ErrFatal)
			continue
		}
		cb.failingSince = time.Time{}
		for _, f := range cb.failures {
			f.Index = cb.idx[f.Index]
			res.failures = append(res.failures, f)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if fatal {
			return applied{}, retry.Permanent(err)
		}
		return applied{}, err
	}
	slices.SortFunc(res.failures, func(x, y segmentstore.Failure) int { return x.Index - y.Index })
	slices.Sort(res.setAside)
	slices.Sort(res.setAsideNames)
	return res, nil
}

// failedFor tells whether cb's destination has now failed for d, or with
// an error retrying cannot fix; it starts the clock at the first failure.
func (cb *clientBatch) failedFor(d time.Duration) bool {
	if errors.Is(cb.err, segmentstore.ErrFatal) {
		return true
	}
	if cb.failingSince.IsZero() {
		cb.failingSince = time.Now()
	}
	return time.Since(cb.failingSince) >= d
}

// probe tells whether an unavailable destination answers a PING again,
// trying at most once per every (until then: false at once).
func (cb *clientBatch) probe(ctx context.Context, every time.Duration) bool {
	if time.Now().Before(cb.nextProbe) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, min(every, 5*time.Second))
	defer cancel()
	if err := cb.client.Ping(pctx).Err(); err != nil {
		cb.nextProbe, cb.lastErr = time.Now().Add(every), err
		return false
	}
	cb.unavailable, cb.failingSince = false, time.Time{}
	return true
}

// batchOf returns client's part of the batch being built, starting it if
// needed.
func (a *applier) batchOf(s *routeSet, client redis.UniversalClient) *clientBatch {
	cb := a.clients[client]
	if cb == nil {
		cb = &clientBatch{client: client, lanes: make([]lane, a.lanes)}
		for i := range cb.lanes {
			cb.lanes[i].w = segmentstore.NewWriter(client, a.now)
		}
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

// write writes cb's changes, split into its lanes by context key, and
// returns the failures (sorted, indexing cb.changes) and the lanes' errors
// joined (permanent if one is).
func (a *applier) write(ctx context.Context, cb *clientBatch) ([]segmentstore.Failure, error) {
	if len(cb.lanes) == 1 || len(cb.changes) < minLaneChanges*2 {
		return cb.lanes[0].w.Apply(ctx, cb.changes)
	}
	a.split(cb)
	var wg sync.WaitGroup
	for i := range cb.lanes {
		l := &cb.lanes[i]
		wg.Go(func() { l.failures, l.err = l.w.Apply(ctx, l.changes) })
	}
	wg.Wait()
	var (
		failures []segmentstore.Failure
		errs     []error
	)
	for i := range cb.lanes {
		l := &cb.lanes[i]
		if l.err != nil {
			errs = append(errs, l.err)
			continue
		}
		for _, f := range l.failures {
			f.Index = l.idx[f.Index]
			failures = append(failures, f)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(failures, func(x, y segmentstore.Failure) int { return x.Index - y.Index })
	return failures, nil
}

// split deals cb's changes to its lanes by context key, in batch order.
func (a *applier) split(cb *clientBatch) {
	for i := range cb.lanes {
		l := &cb.lanes[i]
		l.changes, l.idx = l.changes[:0], l.idx[:0]
	}
	n := uint64(len(cb.lanes))
	for i := range cb.changes {
		l := &cb.lanes[maphash.String(a.seed, cb.changes[i].ContextKey)%n]
		l.changes = append(l.changes, cb.changes[i])
		l.idx = append(l.idx, i)
	}
}

// minLaneChanges is the fewest changes worth a lane of their own: below it
// the round trips of another pipeline cost more than they overlap.
const minLaneChanges = 1000

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
	ids    *storeIDs
}

func (st syncTime) SetSynchronizedOn(ctx context.Context, t time.Time) error {
	s := st.routes.acquire()
	defer st.routes.release(s)
	errs := make([]error, len(s.targets))
	var wg sync.WaitGroup
	for i, tg := range s.targets {
		wg.Go(func() {
			prefixes, err := st.ids.intact(ctx, tg.client, tg.prefixes, strings.Join(tg.names, ", "))
			if err == nil && len(prefixes) > 0 {
				err = segmentstore.NewWriter(tg.client, nil).SetSynchronizedOn(ctx, prefixes, t)
			}
			if err != nil {
				errs[i] = s.named(tg.names, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
