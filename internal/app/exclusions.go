package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
)

// RunsExclusions writes the exclusion report kept with run id as CSV to
// stdout (runs exclusions): the header alone for a run that excluded
// nothing. destination picks one of the run's destinations, required only
// when it has several. What the report lacks (rows over the limit, rows
// lost to a failure of the store, a run recorded without its report) is
// said on stderr.
func RunsExclusions(ctx context.Context, rc redisx.Config, sc catalogstore.Config, id, destination string, stdout, stderr io.Writer) error {
	return withHistory(rc, sc, func(h *runstore.Store) error {
		rs, err := h.Get(ctx, id)
		if err != nil {
			return err
		}
		r, err := pickDestination(id, destination, rs)
		if err != nil {
			return err
		}
		if err := h.WriteExclusions(ctx, r.ID, r.Destination, stdout); err != nil {
			return err
		}
		if note := exclusionsMissing(r); note != "" {
			return say(stderr, "run %s: %s\n", id, note)
		}
		return nil
	})
}

// pickDestination is the record of run id in destination, or its only
// one when destination is "".
func pickDestination(id, destination string, rs []runstore.Record) (runstore.Record, error) {
	var names []string
	for _, r := range rs {
		if r.Destination == destination || (destination == "" && len(rs) == 1) {
			return r, nil
		}
		names = append(names, r.Destination)
	}
	if destination == "" {
		return runstore.Record{}, fmt.Errorf("run %s ran into %d destinations (%s): name one with --destination", id, len(rs), strings.Join(names, ", "))
	}
	return runstore.Record{}, fmt.Errorf("run %s did not run into destination %q (it ran into %s)", id, destination, strings.Join(names, ", "))
}

// exclusionsMissing says what of r's excluded rows its kept report lacks,
// "" when it has them all.
func exclusionsMissing(r runstore.Record) string {
	k := r.Exclusions
	total := r.Summary.ExcludedTotal()
	switch {
	case k == nil && total > 0:
		return fmt.Sprintf("%d rows were excluded but the run was recorded without its report (the replica that ran it kept it locally: %s)", total, orNone(r.Summary.ExclusionsFile))
	case k == nil:
		return ""
	case k.Error != "":
		return fmt.Sprintf("%d of %d excluded rows kept: storing the rest failed: %s", k.Kept, total, k.Error)
	case k.LeftOut > 0:
		return fmt.Sprintf("%d of %d excluded rows kept: the %d over the limit of %d rows kept per run were left out", k.Kept, k.Kept+k.LeftOut, k.LeftOut, k.Kept)
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// exclusionsShown is runs show's line about r's kept exclusion report.
func exclusionsShown(r runstore.Record) string {
	line := "  kept        "
	switch k := r.Exclusions; {
	case k == nil && r.Summary.ExcludedTotal() == 0:
		return ""
	case k == nil:
		return line + "no exclusion report with the run\n"
	case k.Kept == 0 && k.Error == "":
		return line + "no exclusions\n"
	}
	line += fmt.Sprintf("%d exclusions: cohortsync runs exclusions %s --destination %s > exclusions.csv\n", r.Exclusions.Kept, r.ID, r.Destination)
	if note := exclusionsMissing(r); note != "" {
		line += "              " + note + "\n"
	}
	return line
}
