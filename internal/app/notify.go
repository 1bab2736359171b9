package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
)

// startNotifier starts the notifier of r's mapping runs, recording its
// deliveries in r's history; r's teardown closes it (bounded by
// cfg.CloseTimeout) before the control Redis it records into.
func startNotifier(ctx context.Context, r *runs, env func(string) (string, bool), cfg notify.Config) (*notify.Notifier, error) {
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = env // webhook secrets and the SMTP password, read like destinations' passwords
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	n, err := notify.New(ctx, cfg, r.history, r.log)
	if err != nil {
		return nil, err
	}
	r.down.push(n.Close)
	return n, nil
}

// notifyRuns tells whom m names how its run ended, once per destination.
// A run that got no destination started (its error alone) is told once as
// failed, unless nothing was to run (a paused or pushed mapping) or the
// process is stopping.
func notifyRuns(n *notify.Notifier, m catalog.Mapping, trigger string, res []mappingrun.Result, err error) {
	if n == nil || m.Notify.IsZero() {
		return
	}
	if len(res) == 0 {
		if err != nil && !errors.Is(err, mappingrun.ErrNotRunnable) && !errors.Is(err, context.Canceled) {
			n.Notify(m.Notify, notify.Run{Mapping: m.Name, Trigger: trigger, Err: err.Error()})
		}
		return
	}
	for _, r := range res {
		run := notify.Run{Mapping: m.Name, Destination: r.Destination, Trigger: trigger, Summary: r.Summary}
		if r.Err != nil && r.Summary.Error == "" {
			run.Err = r.Err.Error()
		}
		n.Notify(m.Notify, run)
	}
}

// notifySettled tells a run's mapping, if it asks for applied or
// set_aside, how a finished run settled; nil without a notifier. A run
// whose mapping is gone (or a push batch no mapping owns) tells nobody.
func notifySettled(n *notify.Notifier, store *catalogstore.Store, log *slog.Logger) func(context.Context, runstore.Record) {
	if n == nil {
		return nil
	}
	return func(ctx context.Context, rec runstore.Record) {
		m, err := store.Get(ctx, rec.Mapping)
		if err != nil {
			if !errors.Is(err, catalogstore.ErrNotFound) {
				log.WarnContext(ctx, "notify how a run settled", "run", rec.ID, "mapping", rec.Mapping, "error", err)
			}
			return
		}
		if m.Notify.IsZero() {
			return
		}
		ev := catalog.EventApplied
		if rec.SetAside {
			ev = catalog.EventSetAside
		}
		n.Notify(m.Notify, notify.Run{Mapping: m.Name, Destination: rec.Destination, Trigger: rec.Trigger, Summary: rec.Summary, Settled: ev})
	}
}

// writeDeliveries prints the notifications of run id, if any, one line
// each.
func writeDeliveries(ctx context.Context, h *runstore.Store, id string, stdout io.Writer) error {
	ds, err := h.Deliveries(ctx, id)
	if err != nil || len(ds) == 0 {
		return err
	}
	if err := say(stdout, "notifications\n"); err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "  CHANNEL\tDESTINATION\tEVENT\tSTATUS\tATTEMPTS\tAT\tTARGET\tERROR")
	for _, d := range ds {
		_, _ = fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Channel, d.Destination, d.Event, d.Status, d.Attempts,
			d.At.UTC().Format(time.RFC3339), d.Target, d.Error)
	}
	return flush(w)
}
