package app

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
)

// withHistory runs f on the run history in the Redis of rc.
func withHistory(rc redisx.Config, sc catalogstore.Config, f func(*runstore.Store) error) error {
	return withRedis(rc, func(rdb redis.UniversalClient) error {
		h, err := runstore.New(rdb, runstore.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		return f(h)
	})
}

// RunsList writes a table of the recorded runs, newest first.
func RunsList(ctx context.Context, rc redisx.Config, sc catalogstore.Config, f runstore.Filter, stdout io.Writer) error {
	return withHistory(rc, sc, func(h *runstore.Store) error {
		rs, err := h.List(ctx, f)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "RUN\tMAPPING\tDESTINATION\tTRIGGER\tSTARTED\tOUTCOME\tMEMBERS\tADDED\tREMOVED\tEXCLUDED\tDURATION")
		for _, r := range rs {
			s := r.Summary
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%v\n", r.ID, r.Mapping, r.Destination, r.Trigger,
				s.Started.UTC().Format(time.RFC3339), s.Outcome, s.Keys, s.Added, s.Removed, s.ExcludedTotal(), s.Duration.Round(time.Millisecond))
		}
		return flush(w)
	})
}

// RunsShow writes every destination's summary of run id.
func RunsShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, id string, stdout io.Writer) error {
	return withHistory(rc, sc, func(h *runstore.Store) error {
		rs, err := h.Get(ctx, id)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if err := say(stdout, "mapping %s, destination %s, trigger %s, outcome %s\n", r.Mapping, r.Destination, r.Trigger, r.Summary.Outcome); err != nil {
				return err
			}
			if r.Summary.Error != "" {
				if err := say(stdout, "  error       %s\n", r.Summary.Error); err != nil {
					return err
				}
			}
			if _, err := r.Summary.WriteTo(stdout); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
		}
		return writeDeliveries(ctx, h, id, stdout)
	})
}
