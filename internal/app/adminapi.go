package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/control/api"
	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/erase"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// DestinationTestTimeout bounds the admin API's test of a destination.
const DestinationTestTimeout = 5 * time.Second

// mountAPI serves the admin API on srv under /api/v1: tokens in the
// control Redis, the catalog, the run history, segments read through the
// destinations' clients, sync now through sched (the scheduler part's,
// else one of its own: the claim is shared in Redis either way), list
// edits through Kafka like segments add. The returned close cancels the
// runs it started and waits for them.
func mountAPI(ctx context.Context, srv *httpserver.Server, r *runs, env func(string) (string, bool), sc catalogstore.Config,
	cfg ServeConfig, sched *schedule.Scheduler, n *notify.Notifier) (func() error, error) {
	tokens, err := auth.New(r.control, auth.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
	if err != nil {
		return nil, err
	}
	if sched == nil {
		sched, err = schedule.New(schedule.Config{Prefix: sc.Prefix, Timeout: sc.Timeout}, r.control, r.store,
			runAdapter{runner: r.runner, history: r.history, pub: r.pub, log: r.log, notifier: n}, r.log)
		if err != nil {
			return nil, err
		}
	}
	ed, err := newListEditor(ctx, r, cfg.Runs, sc)
	if err != nil {
		return nil, err
	}
	eraser, err := newEraser(r.control, r.store, r.dests, ed.lease)
	if err != nil {
		return nil, err
	}
	eraser.Locker, eraser.Seq, eraser.Streams, eraser.Topic, eraser.Log = ed.locker, ed.seq, ed.pub, cfg.Runs.Producer.Topic, r.log
	eraser.Ends = func(ctx context.Context) (map[int]int64, error) { return freshness.Ends(ctx, r.pub.kc, r.pub.topic) }
	a, err := api.New(cfg.API, api.Deps{Tokens: tokens, Catalog: r.store, Runs: r.history, Connect: r.dests.connect,
		Test: func(ctx context.Context, d catalog.Destination) error {
			return checkDestination(ctx, d, DestinationTestTimeout, env, os.ReadFile)
		},
		Sync: sched, Edit: ed, Log: r.log,
		Lookup: &membership.Lookup{Catalog: r.store, Connect: r.dests.connect, Runs: r.history},
		Status: &status.Checker{Catalog: r.store, Connect: r.dests.connect, History: r.history, SetAsides: r.pub.gaps},
		Erase:  trackedEraser{base: eraser, r: r},
	})
	if err != nil {
		return nil, err
	}
	srv.Handle(api.Prefix+"/", a.Handler())
	return a.Close, nil
}

// listEditor edits list segments for the API as segments add and remove
// do: under the segment's lease, with its shared sequence numbers, each
// edit recorded with what tells when it is applied.
type listEditor struct {
	r      *runs
	cfg    mappingrun.Config
	lease  segmentlease.Config
	locker *segmentlease.Locker
	seq    *segmentlease.SeqAllocator
	pub    *publish.Publisher
}

func newListEditor(ctx context.Context, r *runs, cfg mappingrun.Config, sc catalogstore.Config) (*listEditor, error) {
	lease := cfg.Lease
	lease.Prefix, lease.Timeout = sc.Prefix, sc.Timeout
	locker, err := segmentlease.NewLocker(r.control, lease)
	if err != nil {
		return nil, err
	}
	seq, err := segmentlease.NewSeqAllocator(r.control, lease)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Producer.Config
	pcfg.Logger = r.log
	if err := publish.EnsureTopics(ctx, pcfg, r.kf); err != nil {
		return nil, fmt.Errorf("admin api: %w", err)
	}
	pub, err := publish.New(pcfg, r.kf)
	if err != nil {
		return nil, err
	}
	r.down.push(pub.Close)
	return &listEditor{r: r, cfg: cfg, lease: lease, locker: locker, seq: seq, pub: pub}, nil
}

func (e *listEditor) editor(ctx context.Context, destination string) *segments.Editor {
	history := &trackedHistory{h: e.r.history, pub: e.r.pub, before: e.r.pub.before(ctx, []string{destination})}
	return &segments.Editor{Catalog: e.r.store, Connect: e.r.dests.connect, Locker: e.locker, Seq: e.seq, Streams: e.pub,
		Importer: e.r.runner, History: history, Topic: e.cfg.Producer.Topic, Log: e.r.log}
}

func (e *listEditor) Add(ctx context.Context, t segments.Target, keys []string) (producer.Summary, error) {
	return e.editor(ctx, t.Destination).Add(ctx, t, keys)
}

func (e *listEditor) Remove(ctx context.Context, t segments.Target, keys []string) (producer.Summary, error) {
	return e.editor(ctx, t.Destination).Remove(ctx, t, keys)
}

// trackedEraser erases as cohortsync erase does: each erase recorded in
// the run history with what tells when it is applied.
type trackedEraser struct {
	base *erase.Eraser
	r    *runs
}

func (t trackedEraser) Erase(ctx context.Context, env, contextKey string) (erase.Receipt, error) {
	e := *t.base
	if d, err := membership.Destination(ctx, t.r.store, env); err == nil {
		e.History = &trackedHistory{h: t.r.history, pub: t.r.pub, before: t.r.pub.before(ctx, []string{d.Name})}
	}
	return e.Erase(ctx, env, contextKey)
}
