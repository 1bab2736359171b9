package app

import (
	"context"
	"fmt"
	"io"
	"strconv"
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
		_, _ = fmt.Fprintln(w, "RUN\tMAPPING\tDESTINATION\tTRIGGER\tSTARTED\tSTATUS\tMEMBERS\tADDED\tREMOVED\tEXCLUDED\tDURATION")
		for _, r := range rs {
			s := r.Summary
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%v\n", r.ID, r.Mapping, r.Destination, r.Trigger,
				s.Started.UTC().Format(time.RFC3339), r.Status(), s.Keys, s.Added, s.Removed, s.ExcludedTotal(), s.Duration.Round(time.Millisecond))
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
			if err := say(stdout, "mapping %s, destination %s, trigger %s, status %s\n", r.Mapping, r.Destination, r.Trigger, r.Status()); err != nil {
				return err
			}
			if err := writeTimes(stdout, r); err != nil {
				return err
			}
			if err := say(stdout, "%s", progressLine(r)); err != nil {
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
			if err := say(stdout, "%s", exclusionsShown(r)); err != nil {
				return err
			}
		}
		return writeDeliveries(ctx, h, id, stdout)
	})
}

// writeTimes says when r was published and applied: applied is when the
// consumer group was seen past the run's last event (see runwatch), so a
// run with a consumer down shows published and no applied.
func writeTimes(stdout io.Writer, r runstore.Record) error {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	applied := at(r.Applied)
	switch {
	case r.SetAside:
		applied = "never: events set aside, the next run of the segment repairs it"
	case !r.Applied.IsZero():
		applied += fmt.Sprintf(" (%v after publishing)", r.Applied.Sub(r.Published).Round(time.Millisecond))
	case !r.Published.IsZero() && r.Barrier == nil:
		applied = "unknown: Kafka's offsets could not be read when it was published"
	case !r.Published.IsZero():
		applied = "not yet: the consumer group has not committed past the run's events"
	}
	return say(stdout, "  published   %s\n  applied     %s\n", at(r.Published), applied)
}

// progressLine says how far a running run got, "" for a run that ended.
func progressLine(r runstore.Record) string {
	p := r.Progress
	if p == nil || !r.Running() {
		return ""
	}
	count := strconv.FormatInt(p.Done, 10)
	if p.Total > 0 {
		count += "/" + strconv.FormatInt(p.Total, 10)
	}
	return fmt.Sprintf("  progress    %s %s (updated %s)\n", p.Phase, count, p.Updated.UTC().Format(time.RFC3339))
}
