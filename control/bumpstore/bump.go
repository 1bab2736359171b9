package bumpstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// Phase is how far a bump got.
type Phase string

// Phases of a bump.
const (
	// Building: generation To is being synced; running the bump again
	// resumes it.
	Building Phase = "building"
	// Built: every destination holds generation To's members (published;
	// Applied says whether the consumer applied them) and the mapping runs
	// into To; generation From is untouched, waiting for the confirmation.
	Built Phase = "built"
	// Finished: generation From's members were removed.
	Finished Phase = "finished"
)

// Bump is one move of a mapping's segment to its next generation.
type Bump struct {
	Mapping string    `json:"mapping"`
	Segment string    `json:"segment"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	Phase   Phase     `json:"phase"`
	Started time.Time `json:"started"`
	// Built is the run that built generation To, per destination.
	Built map[string]Build `json:"built,omitempty"`
	// Finished is when generation From's removal was published.
	Finished time.Time `json:"finished,omitzero"`
}

// Build is the run that built the new generation in one destination.
type Build struct {
	Run     string `json:"run"`
	Members int64  `json:"members"`
	// Published is when the run's last event was acknowledged: the
	// destination applied it once its consumer is current up to then.
	Published time.Time `json:"published"`
}

// Active reports whether b is a bump not yet finished.
func (b Bump) Active() bool { return b.Phase == Building || b.Phase == Built }

// ErrInProgress is wrapped by Begin's error when the mapping's last bump is
// built and waits for its finish.
var ErrInProgress = errors.New("a generation bump waits for its finish")

// Begin is the bump to run for m, given its last bump (nil if none): a new
// one from m's generation, or the same one resumed when it did not get to
// the end of building.
func Begin(last *Bump, m catalog.Mapping, now time.Time) (Bump, error) {
	if m.Source.Kind == catalog.SourcePush {
		return Bump{}, fmt.Errorf("mapping %q is fed by pushes: there is no source to build generation %d from; set its generation in the mappings file and let the next pushes fill it", m.Name, m.Generation+1)
	}
	if last != nil && last.Active() {
		switch {
		case last.Phase == Building && (m.Generation == last.From || m.Generation == last.To):
			// (At To: it stopped after moving the mapping, before
			// recording that it was built.)
			return *last, nil
		case last.Phase == Built && m.Generation == last.To:
			return *last, fmt.Errorf("mapping %q: generation %d is built beside %d; once evaluators read %d, run generation finish %s --confirm-evaluators-moved before another bump: %w",
				m.Name, last.To, last.From, last.To, m.Segment, ErrInProgress)
		}
		// The mapping moved elsewhere (a file applied with another
		// generation): that bump no longer describes it.
	}
	return Bump{Mapping: m.Name, Segment: m.Segment, From: m.Generation, To: m.Generation + 1, Phase: Building, Started: now.UTC()}, nil
}

// ErrNotConfirmed is wrapped by Finish's error when the user did not
// confirm that evaluators moved to the new generation.
var ErrNotConfirmed = errors.New("evaluators not confirmed moved")

// Finish checks that b, the last bump of m, may remove generation From now:
// it is built, m runs into To, and the user confirmed that evaluators
// read To.
func Finish(b *Bump, m catalog.Mapping, confirmed bool) error {
	switch {
	case b == nil:
		return fmt.Errorf("mapping %q has no generation bump to finish (generation bump %s starts one)", m.Name, m.Segment)
	case b.Phase == Finished:
		return fmt.Errorf("mapping %q: the bump from generation %d to %d finished at %s", m.Name, b.From, b.To, b.Finished.Format(time.RFC3339))
	case b.Phase == Building:
		return fmt.Errorf("mapping %q: generation %d is not built yet; run generation bump %s again", m.Name, b.To, m.Segment)
	case m.Generation != b.To:
		return fmt.Errorf("mapping %q is at generation %d, not %d as its bump left it (a mappings file applied since?); set it back to %d before finishing", m.Name, m.Generation, b.To, b.To)
	case !confirmed:
		return fmt.Errorf("generation %d of segment %s is what evaluators read until their flag data says \"generation\": %d; once it does, run again with --confirm-evaluators-moved to remove generation %d: %w",
			b.From, m.Segment, b.To, b.From, ErrNotConfirmed)
	}
	return nil
}
