package schedule

import (
	"strconv"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// TriggerKind is why a run starts.
type TriggerKind string

// Trigger kinds.
const (
	// TriggerScheduled runs a slot of a schedule whose previous slot ran.
	TriggerScheduled TriggerKind = "scheduled"
	// TriggerCatchUp runs the latest slot of a schedule whose previous slot
	// did not run here (downtime, or a mapping new to the scheduler): the
	// slots missed in between are not run.
	TriggerCatchUp TriggerKind = "catch-up"
	// TriggerOneTime runs a one-time mapping's content for the first time.
	TriggerOneTime TriggerKind = "one-time"
	// TriggerManual runs a mapping on request (SyncNow), outside its
	// schedule.
	TriggerManual TriggerKind = "manual"
)

// Trigger says why a run starts, for the Runner and its run history.
type Trigger struct {
	Kind TriggerKind
	// Slot is the time of the slot run (scheduled and catch-up); zero
	// otherwise.
	Slot time.Time
	// Attempt counts the runs of this slot, from 1; above 1 the earlier
	// ones failed.
	Attempt int
}

// Action is what a Scheduler did about a mapping at one tick.
type Action string

// Actions.
const (
	// ActionRun claimed the due slot and started its run.
	ActionRun Action = "run"
	// ActionUpToDate: the latest due slot has run (or been given up);
	// Decision.Next is when the next one is due.
	ActionUpToDate Action = "up-to-date"
	// ActionNoSlot: the schedule names no time within the last five years
	// (a cron expression such as February 30th).
	ActionNoSlot Action = "no-slot"
	// ActionPaused: the mapping is paused.
	ActionPaused Action = "paused"
	// ActionPush: the mapping's source pushes; it runs when a push arrives.
	ActionPush Action = "push"
	// ActionBackoff: the due slot failed and waits until Decision.Next to
	// be retried.
	ActionBackoff Action = "backoff"
	// ActionClaimed: a run of the mapping is in progress (Decision.Holder
	// holds the claim), here or on another replica.
	ActionClaimed Action = "claimed"
	// ActionBusy: MaxConcurrent runs are in progress here; a later tick
	// (or another replica) takes the slot.
	ActionBusy Action = "busy"
	// ActionError: Redis or the schedule failed; Decision.Err says how.
	ActionError Action = "error"
)

// Decision is what a Scheduler did about one mapping at one tick.
type Decision struct {
	Action Action
	// Trigger is the run's (ActionRun) or the run that would have started
	// (ActionClaimed, ActionBusy).
	Trigger Trigger
	// Next is when the next slot is due (ActionUpToDate), or when a failed
	// slot is retried (ActionBackoff); zero if unknown.
	Next time.Time
	// Holder is the claim of the run in progress (ActionClaimed).
	Holder string
	// Err is why (ActionError).
	Err error
}

// state is what Redis records of a mapping's runs.
type state struct {
	done        string // slot id (or oneTimeID) of the last slot finished
	attemptSlot string // slot id of a failing slot
	attempts    int    // failed runs of attemptSlot
	retryAt     time.Time
	holder      string // the claim's value, "" if none
}

// Claim modes, the scripts' ARGV.
const (
	modePeriodic = "periodic"
	modeOnce     = "once"
	modeManual   = "manual"
)

// claim is what the claim and finish scripts need to know of a run.
type claim struct {
	id   string // the slot's id
	mode string
}

// oneTimeID is the slot of a one-time mapping: its content, so a changed
// mapping runs again.
func oneTimeID(m catalog.Mapping) string { return "once:" + m.Hash() }

// skip is the decision for a mapping that never runs from a schedule
// (paused, or pushed), ok false for the others.
func skip(m catalog.Mapping) (Decision, bool) {
	switch {
	case !m.Enabled:
		return Decision{Action: ActionPaused}, true
	case m.Source.Kind == catalog.SourcePush || m.Schedule.Kind == catalog.ScheduleOnPush:
		return Decision{Action: ActionPush}, true
	}
	return Decision{}, false
}

// decide is what to do about m at now given its recorded state: the claim
// script checks the same conditions again atomically, since another
// replica may act between the read of st and the claim.
func (c clock) decide(m catalog.Mapping, st state, now time.Time) (Decision, claim) {
	if d, ok := skip(m); ok {
		return d, claim{}
	}
	var d Decision
	var cl claim
	if m.Schedule.Kind == catalog.ScheduleOneTime {
		cl = claim{id: oneTimeID(m), mode: modeOnce}
		if st.done == cl.id {
			return Decision{Action: ActionUpToDate}, claim{}
		}
		d.Trigger = Trigger{Kind: TriggerOneTime}
	} else {
		slot, ok := c.due(m.Schedule, m.Name, now)
		if !ok {
			return Decision{Action: ActionNoSlot}, claim{}
		}
		cl = claim{id: slotID(slot), mode: modePeriodic}
		done, err := strconv.ParseInt(st.done, 10, 64)
		doneOK := err == nil
		if doneOK && done >= slot.UnixMilli() {
			d := Decision{Action: ActionUpToDate}
			if n, ok := c.next(m.Schedule, slot); ok {
				d.Next = n.Add(c.jitter(m.Schedule, m.Name, n))
			}
			return d, claim{}
		}
		d.Trigger = Trigger{Kind: TriggerCatchUp, Slot: slot}
		if p, ok := c.prev(m.Schedule, slot.Add(-time.Nanosecond)); ok && doneOK && done == p.UnixMilli() {
			d.Trigger.Kind = TriggerScheduled
		}
	}
	d.Trigger.Attempt = 1
	if st.attemptSlot == cl.id {
		d.Trigger.Attempt = st.attempts + 1
		if now.Before(st.retryAt) {
			d.Action, d.Next = ActionBackoff, st.retryAt
			return d, claim{}
		}
	}
	if st.holder != "" {
		d.Action, d.Holder = ActionClaimed, st.holder
		return d, claim{}
	}
	d.Action = ActionRun
	return d, cl
}
