package erase

import (
	"context"
	"errors"
	"fmt"

	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// Shown is a receipt with what is true of its erase now.
type Shown struct {
	Receipt Receipt `json:"receipt"`
	// RunStatus is the erase's run history status ("applied" once serve's
	// run watcher saw the consumer group reach the barrier; "published,
	// not applied" before), "" when the history no longer holds it.
	RunStatus string `json:"run_status,omitempty"`
	// StillIncluded are the refs whose include set holds the key now:
	// empty once the erase is applied (and nothing added the key back).
	StillIncluded []string `json:"still_included"`
	// Listed says whether the key is still on the erased-keys list.
	Listed bool `json:"erased_list"`
	// Unreadable says why the destination could not be read ("" if it
	// was): then StillIncluded is unknown.
	Unreadable string `json:"unreadable,omitempty"`
}

// Show returns receipt id with the erase's state now: its run's status
// (Runs), the segments still including the key (the destination's Redis,
// read as the SDKs do) and whether the key is still listed as erased.
func (e *Eraser) Show(ctx context.Context, id string, runs membership.Runs) (Shown, error) {
	r, err := e.Receipts.Get(ctx, id)
	if err != nil {
		return Shown{}, err
	}
	out := Shown{Receipt: r, StillIncluded: []string{}}
	if runs != nil {
		recs, err := runs.Get(ctx, r.ID)
		if err != nil && !errors.Is(err, runstore.ErrNotFound) {
			return out, err
		}
		for _, rec := range recs {
			if rec.Destination == r.Destination {
				out.RunStatus = rec.Status()
			}
		}
	}
	keys, err := e.Erased.Keys(ctx, r.Environment)
	if err != nil {
		return out, err
	}
	_, out.Listed = keys[r.ContextKey]
	d, err := e.Catalog.Destination(ctx, r.Destination)
	if err == nil {
		var c segmentstore.Client
		if c, err = e.Connect(ctx, d); err == nil {
			out.StillIncluded, _, err = segmentstore.Membership(ctx, c, r.Prefix, r.ContextKey)
		}
	}
	if err != nil {
		out.Unreadable = fmt.Sprintf("destination %q: %v", r.Destination, err)
	}
	if out.StillIncluded == nil {
		out.StillIncluded = []string{}
	}
	return out, nil
}
