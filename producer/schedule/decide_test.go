package schedule

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// mapping returns an enabled mapping called name on schedule sched.
func mapping(t testing.TB, name, sched string) catalog.Mapping {
	t.Helper()
	sc, err := catalog.ParseSchedule(sched)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.Mapping{
		Name: name, Source: catalog.Source{Kind: catalog.SourceCSV, Location: "./" + name + ".csv"}, Segment: name,
		Destinations: []string{"production"}, IDProperty: catalog.DefaultIDProperty, ContextKind: catalog.DefaultContextKind,
		Schedule: sc, Generation: catalog.DefaultGeneration, Enabled: true,
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ms(s string) string { return slotID(at(s)) }

func TestDecide(t *testing.T) {
	hourly := mapping(t, "hourly", "hourly")
	weekdays := mapping(t, "weekdays", "30 6 * * 1-5")
	once := mapping(t, "once", "one-time")
	changed := once
	changed.MaxShrink = 0.5
	paused := hourly
	paused.Enabled = false
	pausedOnce := once
	pausedOnce.Enabled = false
	push := mapping(t, "push", "hourly")
	push.Source, push.Schedule = catalog.Source{Kind: catalog.SourcePush}, catalog.Schedule{Kind: catalog.ScheduleOnPush}
	never := mapping(t, "never", "0 0 30 2 *")

	tests := []struct {
		name    string
		m       catalog.Mapping
		st      state
		now     string
		action  Action
		trigger Trigger
		next    string // Decision.Next, "" for zero
	}{
		{"a new mapping runs its latest slot at once", hourly, state{}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{TriggerCatchUp, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"the slot after the one done is scheduled", hourly, state{done: ms("2025-03-10T09:00:00Z")}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{TriggerScheduled, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"a slot due exactly now runs", hourly, state{done: ms("2025-03-10T09:00:00Z")}, "2025-03-10T10:00:00Z",
			ActionRun, Trigger{TriggerScheduled, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"the latest slot done waits for the next", hourly, state{done: ms("2025-03-10T10:00:00Z")}, "2025-03-10T10:59:59Z",
			ActionUpToDate, Trigger{}, "2025-03-10T11:00:00Z"},
		{"after five missed slots only the latest runs, as a catch-up", hourly, state{done: ms("2025-03-10T04:00:00Z")}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{TriggerCatchUp, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"a failed slot waits out its backoff", hourly, state{done: ms("2025-03-10T09:00:00Z"), attemptSlot: ms("2025-03-10T10:00:00Z"), attempts: 2, retryAt: at("2025-03-10T10:25:00Z")}, "2025-03-10T10:20:00Z",
			ActionBackoff, Trigger{TriggerScheduled, at("2025-03-10T10:00:00Z"), 3}, "2025-03-10T10:25:00Z"},
		{"a failed slot is retried after its backoff", hourly, state{done: ms("2025-03-10T09:00:00Z"), attemptSlot: ms("2025-03-10T10:00:00Z"), attempts: 2, retryAt: at("2025-03-10T10:25:00Z")}, "2025-03-10T10:25:00Z",
			ActionRun, Trigger{TriggerScheduled, at("2025-03-10T10:00:00Z"), 3}, ""},
		{"the failures of an older slot do not hold the next one back", hourly, state{done: ms("2025-03-10T08:00:00Z"), attemptSlot: ms("2025-03-10T09:00:00Z"), attempts: 2, retryAt: at("2025-03-10T11:00:00Z")}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{TriggerCatchUp, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"a claimed mapping is left to its holder", hourly, state{done: ms("2025-03-10T09:00:00Z"), holder: "replica-2 x 1"}, "2025-03-10T10:20:00Z",
			ActionClaimed, Trigger{TriggerScheduled, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"a done slot is not run even when claimed", hourly, state{done: ms("2025-03-10T10:00:00Z"), holder: "replica-2 x manual"}, "2025-03-10T10:20:00Z",
			ActionUpToDate, Trigger{}, "2025-03-10T11:00:00Z"},
		{"a one-time record does not count as a periodic slot", hourly, state{done: oneTimeID(hourly)}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{TriggerCatchUp, at("2025-03-10T10:00:00Z"), 1}, ""},
		{"a cron schedule runs its last weekday slot on a Saturday", weekdays, state{done: ms("2025-03-13T06:30:00Z")}, "2025-03-15T12:00:00Z",
			ActionRun, Trigger{TriggerScheduled, at("2025-03-14T06:30:00Z"), 1}, ""},
		{"a cron schedule done on Friday waits for Monday", weekdays, state{done: ms("2025-03-14T06:30:00Z")}, "2025-03-15T12:00:00Z",
			ActionUpToDate, Trigger{}, "2025-03-17T06:30:00Z"},
		{"a cron expression with no time never runs", never, state{}, "2025-03-15T12:00:00Z", ActionNoSlot, Trigger{}, ""},
		{"a one-time mapping runs once", once, state{}, "2025-03-10T10:20:00Z", ActionRun, Trigger{Kind: TriggerOneTime, Attempt: 1}, ""},
		{"a one-time mapping that ran is done", once, state{done: oneTimeID(once)}, "2025-03-10T10:20:00Z", ActionUpToDate, Trigger{}, ""},
		{"a one-time mapping runs again when its content changed", changed, state{done: oneTimeID(once)}, "2025-03-10T10:20:00Z",
			ActionRun, Trigger{Kind: TriggerOneTime, Attempt: 1}, ""},
		{"a one-time mapping that failed waits out its backoff", once, state{attemptSlot: oneTimeID(once), attempts: 1, retryAt: at("2025-03-10T10:21:00Z")}, "2025-03-10T10:20:00Z",
			ActionBackoff, Trigger{Kind: TriggerOneTime, Attempt: 2}, "2025-03-10T10:21:00Z"},
		{"a paused mapping never runs", paused, state{}, "2025-03-10T10:20:00Z", ActionPaused, Trigger{}, ""},
		{"a paused one-time mapping never runs", pausedOnce, state{}, "2025-03-10T10:20:00Z", ActionPaused, Trigger{}, ""},
		{"a push source never runs from a schedule", push, state{}, "2025-03-10T10:20:00Z", ActionPush, Trigger{}, ""},
	}
	c := clock{loc: time.UTC}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, cl := c.decide(tt.m, tt.st, at(tt.now))
			if d.Action != tt.action || d.Trigger != tt.trigger {
				t.Fatalf("decide = %s %+v, want %s %+v", d.Action, d.Trigger, tt.action, tt.trigger)
			}
			if tt.next != "" {
				if want := at(tt.next); !d.Next.Equal(want) {
					t.Fatalf("Next = %v, want %v", d.Next, want)
				}
			} else if !d.Next.IsZero() {
				t.Fatalf("Next = %v, want none", d.Next)
			}
			if d.Action == ActionRun && (cl.id == "" || cl.mode == "") || d.Action != ActionRun && cl != (claim{}) {
				t.Fatalf("claim %+v for action %s", cl, d.Action)
			}
			if d.Action == ActionClaimed && d.Holder != tt.st.holder {
				t.Fatalf("Holder = %q, want %q", d.Holder, tt.st.holder)
			}
		})
	}
}

func TestSlotsInTimeZones(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	ny, kolkata := load("America/New_York"), load("Asia/Kolkata")
	hourly, daily := mapping(t, "h", "hourly").Schedule, mapping(t, "d", "daily").Schedule
	cron := mapping(t, "c", "30 6 * * *").Schedule
	tests := []struct {
		name       string
		loc        *time.Location
		sc         catalog.Schedule
		t          string
		prev, next string
	}{
		{"hourly in UTC", time.UTC, hourly, "2025-03-10T10:20:30Z", "2025-03-10T10:00:00Z", "2025-03-10T11:00:00Z"},
		{"hourly on the hour", time.UTC, hourly, "2025-03-10T10:00:00Z", "2025-03-10T10:00:00Z", "2025-03-10T11:00:00Z"},
		{"hourly at a half-hour offset is the local hour", kolkata, hourly, "2025-03-10T10:00:00Z", "2025-03-10T09:30:00Z", "2025-03-10T10:30:00Z"},
		{"daily is local midnight", ny, daily, "2025-03-10T12:00:00Z", "2025-03-10T04:00:00Z", "2025-03-11T04:00:00Z"},
		{"daily across the spring clock change is 23 hours", ny, daily, "2025-03-09T12:00:00Z", "2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"},
		{"cron in the schedule's zone", ny, cron, "2025-03-10T12:00:00Z", "2025-03-10T10:30:00Z", "2025-03-11T10:30:00Z"},
		{"cron on its own slot", time.UTC, cron, "2025-03-10T06:30:00Z", "2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock{loc: tt.loc}
			p, ok := c.prev(tt.sc, at(tt.t))
			if !ok || !p.Equal(at(tt.prev)) {
				t.Fatalf("prev = %v, %v, want %s", p.UTC(), ok, tt.prev)
			}
			n, ok := c.next(tt.sc, at(tt.t))
			if !ok || !n.Equal(at(tt.next)) {
				t.Fatalf("next = %v, %v, want %s", n.UTC(), ok, tt.next)
			}
		})
	}
}

// TestJitterIsStableAndBounded: every replica computes the same jitter for
// a mapping's slot, below MaxJitter and half the interval, and the jitter
// spreads mappings and slots.
func TestJitterIsStableAndBounded(t *testing.T) {
	c := clock{loc: time.UTC, maxJitter: time.Minute}
	hourly := mapping(t, "h", "hourly").Schedule
	everyMinute := mapping(t, "m", "* * * * *").Schedule
	slot := at("2025-03-10T10:00:00Z")
	seen := map[time.Duration]bool{}
	for i := range 50 {
		name := string(rune('a'+i%26)) + string(rune('a'+i/26))
		j := c.jitter(hourly, name, slot)
		if j != c.jitter(hourly, name, slot) || j < 0 || j >= time.Minute {
			t.Fatalf("jitter of %s = %v: unstable or out of [0, 1m)", name, j)
		}
		seen[j] = true
		if j := c.jitter(everyMinute, name, slot); j >= 30*time.Second {
			t.Fatalf("jitter of a minutely schedule = %v, want below half its interval", j)
		}
	}
	if len(seen) < 40 {
		t.Fatalf("50 mappings got %d distinct jitters: not spread", len(seen))
	}
	if c.jitter(hourly, "a", slot) == c.jitter(hourly, "a", slot.Add(time.Hour)) && c.jitter(hourly, "a", slot.Add(2*time.Hour)) == c.jitter(hourly, "a", slot) {
		t.Fatal("a mapping's jitter is the same for every slot")
	}
	// Before its jitter has passed a slot is not due: the one before is.
	m := mapping(t, "a", "hourly")
	j := c.jitter(m.Schedule, m.Name, slot)
	if j == 0 {
		t.Fatal("pick another name: this test needs a jitter above zero")
	}
	if d, _ := c.due(m.Schedule, m.Name, slot.Add(j-time.Millisecond)); !d.Equal(slot.Add(-time.Hour)) {
		t.Fatalf("due before the jitter = %v, want the slot before", d)
	}
	if d, _ := c.due(m.Schedule, m.Name, slot.Add(j)); !d.Equal(slot) {
		t.Fatalf("due at the jitter = %v, want %v", d, slot)
	}
}
