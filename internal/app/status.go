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
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
)

// Status writes the status of every destination (or the one named) and
// its segments, as tables or JSON (asJSON).
func Status(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), destination string,
	cfg status.Config, asJSON bool, stdout io.Writer) error {
	return withControl(rc, sc, env, func(cat *catalogstore.Store, h *runstore.Store, rdb redis.UniversalClient, dests *destClients) error {
		gaps, err := segmentlease.NewGaps(rdb, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		c := &status.Checker{Catalog: cat, Connect: dests.connect, History: h, SetAsides: gaps, Config: cfg}
		rep, err := c.Check(ctx, destination)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSONValue(stdout, rep)
		}
		return writeStatus(stdout, rep)
	})
}

// writeStatus writes a status report for people: one table of
// destinations, their last errors, one table of segments.
func writeStatus(stdout io.Writer, rep status.Report) error {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintf(w, "DESTINATION\tENVIRONMENT\tAVAILABLE\tPOTENTIALLY-STALE\tLAST-SYNC\tSET-ASIDES\tLAST-ERROR\n")
	for _, d := range rep.Destinations {
		last := "-"
		if len(d.LastErrors) > 0 {
			last = d.LastErrors[0].Kind + ": " + d.LastErrors[0].Detail
		}
		sync := "never (missing)"
		if !d.SynchronizedOn.IsZero() {
			sync = fmt.Sprintf("%s (%s ago)", d.SynchronizedOn.UTC().Format(time.RFC3339), d.SyncAge.Round(time.Second))
		}
		if !d.Available {
			sync = "-"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Name, d.Environment, yesNo(d.Available), yesNo(d.PotentiallyStale), sync, d.SetAsides, last)
	}
	if err := flush(w); err != nil {
		return err
	}
	if err := say(stdout, "(potentially stale: synchronized_on missing or at least %v old, the SDKs' staleAfter)\n", rep.StaleAfter); err != nil {
		return err
	}
	for _, d := range rep.Destinations {
		if len(d.LastErrors) < 2 {
			continue
		}
		if err := say(stdout, "\nlast errors of %s:\n", d.Name); err != nil {
			return err
		}
		for _, p := range d.LastErrors {
			if err := say(stdout, "  %s  %s  %s\n", timeOrDash(p.At), p.Kind, p.Detail); err != nil {
				return err
			}
		}
	}
	if err := say(stdout, "\n"); err != nil {
		return err
	}
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "DESTINATION\tSEGMENT\tGENERATION\tSOURCE\tMEMBERS\tLAST-APPLIED\tAPPLIED-SEQ\tPUBLISHED-SEQ\tSEQ-LAG\tPENDING-RUNS")
	for _, d := range rep.Destinations {
		for _, s := range d.Segments {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", d.Name, s.Key, s.Generation, s.Source, s.Members,
				timeOrDash(s.LastApplied), s.LastSeq, s.LastPublishedSeq, s.SeqLag, s.PendingRuns)
		}
	}
	return flush(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
