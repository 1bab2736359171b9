package app

import (
	"context"
	"fmt"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/metrics"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/receiver"
)

// startReceiver builds serve's receiver part and returns its run: partner
// pushes on cfg.ReceiverAddr, published with their own Publisher (closed
// with r) and numbered by the same per-segment counters in the control
// Redis as the mapping runs; every accepted batch is recorded in the run
// history.
func startReceiver(ctx context.Context, r *runs, sc catalogstore.Config, cfg ServeConfig, n *notify.Notifier) (run func(context.Context) error, m metrics.Set, err error) {
	pcfg := cfg.Runs.Producer.Config
	pcfg.Logger, pcfg.Propagator = r.log, nil
	if err := publish.EnsureTopics(ctx, pcfg, r.kf); err != nil {
		return nil, nil, err
	}
	pub, err := publish.New(pcfg, r.kf)
	if err != nil {
		return nil, nil, err
	}
	r.down.push(pub.Close)
	seq, err := segmentlease.NewSeqAllocator(r.control, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
	if err != nil {
		return nil, nil, err
	}
	parsers, err := receiver.NewParsers(receiver.Builtin()...)
	if err != nil {
		return nil, nil, fmt.Errorf("receiver: %w", err)
	}
	rcfg := cfg.Receiver
	rcfg.Logger = r.log
	rcv, err := receiver.New(rcfg, receiver.Deps{
		Parsers: parsers, Catalog: r.store, Seq: seq, Streams: pub, Control: r.control, Prefix: sc.Prefix,
		History: r.history, Topic: pcfg.Topic, Barriers: r.pub,
		OnRun: func(_ context.Context, m catalog.Mapping, rec runstore.Record) {
			if n != nil && !m.Notify.IsZero() {
				n.Notify(m.Notify, notify.Run{Mapping: m.Name, Destination: rec.Destination, Trigger: rec.Trigger, Summary: rec.Summary})
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	r.down.push(rcv.Close) // before the control Redis closes: recordings under way end first
	srv := httpserver.New(cfg.ReceiverAddr, r.log).Named("receiver-addr")
	rcv.Register(srv)
	return srv.Run, metrics.NewReceiver(rcv.Stats()), nil
}
