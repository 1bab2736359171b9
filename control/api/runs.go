package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/producer"
)

// Run states, the runs list's status filter (openapi.json's RunState).
var runStates = []string{"running", "interrupted", "succeeded", "published", "applied", "set_aside", "failed", "refused"}

// runState is how far r got at now, in one word: a running run whose
// record was not rewritten for runstore.StaleAfter is interrupted (its
// process is gone).
func runState(r runstore.Record, now time.Time) string {
	switch {
	case r.Summary.Outcome == producer.Failed:
		return "failed"
	case r.Summary.Outcome == producer.Refused:
		return "refused"
	case r.SetAside:
		return "set_aside"
	case !r.Applied.IsZero():
		return "applied"
	case !r.Published.IsZero():
		return "published"
	case r.Summary.Outcome == producer.Succeeded:
		return "succeeded"
	case r.Interrupted(now):
		return "interrupted"
	}
	return "running"
}

// runJSON is a run record as the API shows it.
type runJSON struct {
	runstore.Record
	State  string `json:"state"`
	Status string `json:"status"`
}

func (a *API) runView(r runstore.Record) runJSON {
	return runJSON{Record: r, State: runState(r, a.deps.Now()), Status: r.StatusAt(a.deps.Now())}
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "mapping", "destination", "trigger", "status", "since", "until", "cursor", "limit")
	rq := runstore.Query{Mapping: q.str("mapping"), Destination: q.str("destination"), Trigger: q.str("trigger"),
		Since: q.time("since"), Until: q.time("until"), Cursor: q.str("cursor"), Limit: q.limit()}
	state := q.oneOf("status", runStates)
	if err := q.err(); err != nil {
		return err
	}
	if !rq.Since.IsZero() && !rq.Until.IsZero() && !rq.Since.Before(rq.Until) {
		return badRequest("until", "until %s: want a time after since", rq.Until.Format("2006-01-02T15:04:05Z07:00"))
	}
	if strings.ContainsAny(rq.Destination, " \n") {
		return badRequest("destination", "destination %q: want a destination name", rq.Destination)
	}
	if state != "" {
		now := a.deps.Now()
		rq.Match = func(rec runstore.Record) bool { return runState(rec, now) == state }
	}
	p, err := a.deps.Runs.Page(r.Context(), rq)
	if err != nil {
		if errors.Is(err, runstore.ErrCursor) {
			return badRequest("cursor", "cursor %q: want the next_cursor of a previous page", rq.Cursor)
		}
		return err
	}
	out := pageJSON[runJSON]{Items: make([]runJSON, len(p.Records)), NextCursor: p.Next}
	for i, rec := range p.Records {
		out.Items[i] = a.runView(rec)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// runDetail is a run: a record per destination.
type runDetail struct {
	ID      string    `json:"id"`
	Records []runJSON `json:"records"`
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("run")
	recs, err := a.deps.Runs.Get(r.Context(), id)
	if err != nil {
		return err
	}
	out := runDetail{ID: id, Records: make([]runJSON, len(recs))}
	for i, rec := range recs {
		out.Records[i] = a.runView(rec)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) runExclusions(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "destination")
	dest := q.str("destination")
	if err := q.err(); err != nil {
		return err
	}
	id := r.PathValue("run")
	recs, err := a.deps.Runs.Get(r.Context(), id)
	if err != nil {
		return err
	}
	names := make([]string, len(recs))
	for i, rec := range recs {
		names[i] = rec.Destination
	}
	switch {
	case dest == "" && len(recs) > 1:
		return badRequest("destination", "run %s went to %s: want destination, one of them", id, strings.Join(names, ", "))
	case dest == "":
		dest = names[0]
	case !slices.Contains(names, dest):
		return badRequest("destination", "run %s went to %s, not %q", id, strings.Join(names, ", "), dest)
	}
	return streamCSV(w, fmt.Sprintf("exclusions-%s-%s.csv", id, dest), func(out io.Writer) error {
		return a.deps.Runs.WriteExclusions(r.Context(), id, dest, out)
	})
}

// streamCSV answers what write writes as a CSV download called name. The
// status and headers are sent with the first byte, so an error before
// it is still answered as JSON; one after it cuts the download short.
func streamCSV(w http.ResponseWriter, name string, write func(io.Writer) error) error {
	lw := &lazyWriter{w: w, name: name}
	err := write(lw)
	if err != nil && lw.started {
		return fmt.Errorf("%w (the download was cut short: %w)", errAfterStart, err)
	}
	if err != nil {
		return err
	}
	if !lw.started {
		lw.start()
	}
	return nil
}

// errAfterStart marks an error met once the answer was started: the API
// can only log it.
var errAfterStart = errors.New("answer started")

type lazyWriter struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	l.w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", l.name))
	l.w.Header().Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}
