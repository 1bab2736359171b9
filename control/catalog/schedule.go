package catalog

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// ScheduleKind is how a mapping is scheduled.
type ScheduleKind string

// Schedule kinds.
const (
	// ScheduleOneTime runs once, when the mapping is applied (the product
	// page's "one-time sync").
	ScheduleOneTime ScheduleKind = "one-time"
	// ScheduleHourly runs every hour, the product page's recommendation.
	ScheduleHourly ScheduleKind = "hourly"
	// ScheduleDaily runs every day.
	ScheduleDaily ScheduleKind = "daily"
	// ScheduleCron runs on a cron expression.
	ScheduleCron ScheduleKind = "cron"
	// ScheduleOnPush runs when a push arrives: the schedule of a push
	// source, which declares none.
	ScheduleOnPush ScheduleKind = "on-push"
)

// scheduleForm is what ParseSchedule accepts, for errors.
const scheduleForm = "one-time, hourly, daily or a 5-field cron expression"

// cronParser is the standard 5-field form (minute hour day-of-month month
// day-of-week), without descriptors such as @every: the words hourly and
// daily cover those, and one form is easier to read in review.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Schedule is when a mapping runs. The zero value is no schedule.
type Schedule struct {
	Kind ScheduleKind
	// Expr is the cron expression of ScheduleCron, blanks collapsed.
	Expr string
	cron cron.Schedule
}

// ParseSchedule reads "one-time", "hourly", "daily" or a 5-field cron
// expression such as "30 6 * * 1-5".
func ParseSchedule(s string) (Schedule, error) {
	switch s {
	case string(ScheduleOneTime), string(ScheduleHourly), string(ScheduleDaily):
		return Schedule{Kind: ScheduleKind(s)}, nil
	}
	expr := strings.Join(strings.Fields(s), " ")
	c, err := cronParser.Parse(expr)
	if err != nil {
		return Schedule{}, fmt.Errorf("want %s (%w)", scheduleForm, err)
	}
	return Schedule{Kind: ScheduleCron, Expr: expr, cron: c}, nil
}

// String is the schedule as ParseSchedule reads it ("on-push" for a push
// source's).
func (s Schedule) String() string {
	if s.Kind == ScheduleCron {
		return s.Expr
	}
	return string(s.Kind)
}

// Cron is the cron schedule of ScheduleCron, nil for the other kinds (the
// scheduler adds its jitter to hourly and daily itself).
func (s Schedule) Cron() cron.Schedule { return s.cron }
