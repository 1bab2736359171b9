package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
)

// withControl runs f on the catalog and run history in the control Redis
// of rc, with a connector to the destinations' Redis (passwords read
// through env), all closed after.
func withControl(rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool),
	f func(cat *catalogstore.Store, history *runstore.Store, rdb redis.UniversalClient, dests *destClients) error) error {
	return withStoreRedis(rc, sc, func(s *catalogstore.Store, rdb redis.UniversalClient) (err error) {
		h, err := runstore.New(rdb, runstore.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		dests := newDestClients(env)
		defer func() { err = errors.Join(err, dests.Close()) }()
		return f(s, h, rdb, dests)
	})
}

// SegmentsLookup writes which segments of q.Env's destination hold
// q.ContextKey (only q.Segment with one) and since which run, as a table
// or JSON (format). With a segment the key is not in, the table says so
// and the command still succeeds (a lookup, not a check).
func SegmentsLookup(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), q membership.Query,
	format string, stdout io.Writer) error {
	return withControl(rc, sc, env, func(cat *catalogstore.Store, h *runstore.Store, _ redis.UniversalClient, dests *destClients) error {
		l := &membership.Lookup{Catalog: cat, Connect: dests.connect, Runs: h}
		res, err := l.Lookup(ctx, q)
		if err != nil {
			return err
		}
		if format == FormatJSON {
			return writeJSONValue(stdout, res)
		}
		return writeLookup(stdout, res)
	})
}

// writeJSONValue writes v as indented JSON and a newline.
func writeJSONValue(stdout io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// writeLookup writes a lookup's result for people.
func writeLookup(stdout io.Writer, res membership.Result) error {
	if err := say(stdout, "context key %q in destination %s (environment %s, prefix %s, hash %s)\n",
		res.ContextKey, res.Destination, res.Environment, res.Prefix, res.ContextHash); err != nil {
		return err
	}
	if len(res.Segments) == 0 {
		if res.Segment != "" {
			return say(stdout, "not in segment %s (no generation of it includes or excludes the key)\n", res.Segment)
		}
		return say(stdout, "in no segment\n")
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "SEGMENT\tGENERATION\tSTATE\tSOURCE\tMAPPING\tSINCE-SEQ\tSINCE-RUN\tRUN-STARTED\tTRIGGER")
	for _, e := range res.Segments {
		gen := fmt.Sprint(e.Generation)
		if !e.Current {
			gen += " (not the mapping's)"
		}
		state := "included"
		switch {
		case e.Included && e.Excluded:
			state = "included (also excluded; included wins)"
		case e.Excluded:
			state = "excluded"
		}
		source := e.Source
		if e.SourceDetail != "" {
			source += " " + e.SourceDetail
		}
		seq, run, started, trigger := "-", "-", "-", "-"
		if s := e.Since; s != nil {
			if s.Known {
				seq = fmt.Sprint(s.Seq)
			}
			run = orDash(s.Run)
			if s.Note != "" {
				run = fmt.Sprintf("%s (%s)", run, s.Note)
				if !s.Known {
					run = s.Note
				}
			}
			started, trigger = timeOrDash(s.RunStarted), orDash(s.RunTrigger)
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Segment, gen, state, source, orDash(e.Mapping), seq, run, started, trigger)
	}
	return flush(w)
}
