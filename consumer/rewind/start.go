package rewind

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// AllPartitions is the partition of an offset given for every partition
// (ParseOffsets of a bare number).
const AllPartitions = -1

// Start says where Rewind moves the group: the first offset the log still
// holds (the zero value), given offsets, or the first offset produced at
// or after a time. At most one of Offsets and Time is set.
type Start struct {
	// Offsets are the offsets to commit by partition; only the partitions
	// named move (AllPartitions: every partition). An offset must lie
	// within its partition's log, between the first offset it still holds
	// and its end (the end replays nothing there).
	Offsets map[int]int64
	// Time moves every partition to its first message with a timestamp at
	// or after it (Kafka's time index), or to its end when none is that
	// recent. It must not be in the future.
	Time time.Time
}

// Earliest reports whether s is the first offset of every partition.
func (s Start) Earliest() bool { return len(s.Offsets) == 0 && s.Time.IsZero() }

// Validate checks what can be checked without the broker; now is the
// clock's time, for a time in the future. Errors are *setting.Error
// values of the flags --from-offset and --from-time.
func (s Start) Validate(now time.Time) error {
	switch {
	case len(s.Offsets) > 0 && !s.Time.IsZero():
		return setting.Invalid("from-time", s.Time.Format(time.RFC3339), "no time when --from-offset is set")
	case !s.Time.IsZero() && s.Time.After(now):
		return setting.Invalid("from-time", s.Time.Format(time.RFC3339), "a time not in the future (now is %s)", now.UTC().Format(time.RFC3339))
	}
	for p, off := range s.Offsets {
		if p < AllPartitions {
			return setting.Invalid("from-offset", p, "partition numbers >= 0")
		}
		if off < 0 {
			return setting.Invalid("from-offset", off, "offsets >= 0")
		}
	}
	if _, all := s.Offsets[AllPartitions]; all && len(s.Offsets) > 1 {
		return setting.Invalid("from-offset", "", "either one offset for every partition or PARTITION:OFFSET pairs, not both")
	}
	return nil
}

// ParseOffsets parses --from-offset: one offset for every partition
// ("1200"), or comma-separated PARTITION:OFFSET pairs ("0:1200,3:50").
// Errors are *setting.Error values naming the flag.
func ParseOffsets(s string) (map[int]int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	const want = "one offset for every partition (1200) or PARTITION:OFFSET pairs (0:1200,3:50)"
	if !strings.Contains(s, ":") {
		off, err := strconv.ParseInt(s, 10, 64)
		if err != nil || off < 0 {
			return nil, setting.Invalid("from-offset", s, want)
		}
		return map[int]int64{AllPartitions: off}, nil
	}
	out := map[int]int64{}
	for pair := range strings.SplitSeq(s, ",") {
		ps, os, ok := strings.Cut(strings.TrimSpace(pair), ":")
		p, perr := strconv.Atoi(ps)
		off, oerr := strconv.ParseInt(os, 10, 64)
		if !ok || perr != nil || oerr != nil || p < 0 || off < 0 {
			return nil, setting.Invalid("from-offset", pair, want)
		}
		if _, dup := out[p]; dup {
			return nil, setting.Invalid("from-offset", s, "each partition once (partition %d twice)", p)
		}
		out[p] = off
	}
	return out, nil
}

// ParseTime parses --from-time, an RFC 3339 time; an error is a
// *setting.Error naming the flag.
func ParseTime(s string) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, setting.Invalid("from-time", s, "an RFC 3339 time, e.g. 2026-12-07T15:04:05Z")
	}
	return t, nil
}

// String says where s starts, for messages.
func (s Start) String() string {
	switch {
	case !s.Time.IsZero():
		return "the first messages produced since " + s.Time.UTC().Format(time.RFC3339Nano)
	case len(s.Offsets) > 0:
		return "the given offsets"
	}
	return "the start"
}

// errOffsetOutside is the error of an offset outside its partition's log.
func errOffsetOutside(topic string, p int, off, first, end int64) error {
	switch {
	case off > end:
		return fmt.Errorf("offset %d of partition %s/%d is beyond the end of its log (%d, the next offset to be written): %w", off, topic, p, end, ErrOutOfRange)
	default:
		return fmt.Errorf("offset %d of partition %s/%d is before the first offset its log still holds (%d; retention or compaction removed the rest): %w", off, topic, p, first, ErrOutOfRange)
	}
}
