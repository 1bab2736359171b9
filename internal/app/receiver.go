package app

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/receiver"
)

// startReceiver starts serve's receiver part in g: partner pushes on
// cfg.ReceiverAddr, published with their own Publisher and numbered by the
// same per-segment counters in the control Redis as the mapping runs.
func startReceiver(ctx context.Context, g *errgroup.Group, gctx context.Context, r *runs, sc catalogstore.Config, cfg ServeConfig) error {
	pcfg := cfg.Runs.Producer.Config
	pcfg.Logger, pcfg.Propagator = r.log, nil
	if err := publish.EnsureTopics(ctx, pcfg, r.kf); err != nil {
		return err
	}
	pub, err := publish.New(pcfg, r.kf)
	if err != nil {
		return err
	}
	r.down.push(pub.Close)
	seq, err := segmentlease.NewSeqAllocator(r.control, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
	if err != nil {
		return err
	}
	parsers, err := receiver.NewParsers(receiver.Builtin()...)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	rcfg := cfg.Receiver
	rcfg.Logger = r.log
	rcv, err := receiver.New(rcfg, receiver.Deps{
		Parsers: parsers, Catalog: r.store, Seq: seq, Streams: pub, Control: r.control, Prefix: sc.Prefix,
	})
	if err != nil {
		return err
	}
	srv := httpserver.New(cfg.ReceiverAddr, r.log)
	rcv.Register(srv)
	g.Go(func() error { return srv.Run(gctx) })
	return nil
}
