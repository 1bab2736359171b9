package freshness

import (
	"context"
	"strings"
	"testing"
)

func TestNewBarrier(t *testing.T) {
	cases := []struct {
		name          string
		before, after map[int]int64
		want          Barrier
	}{
		{"partitions whose end did not move are left out", map[int]int64{0: 5, 1: 7, 2: 0}, map[int]int64{0: 9, 1: 7, 2: 3}, Barrier{0: 9, 2: 3}},
		{"a partition added during the run is kept", map[int]int64{0: 5}, map[int]int64{0: 5, 1: 2}, Barrier{1: 2}},
		{"a run that published nothing has an empty barrier", map[int]int64{0: 5}, map[int]int64{0: 5}, Barrier{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := NewBarrier(c.before, c.after)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for p, end := range c.want {
				if got[p] != end {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestBarrierRemaining(t *testing.T) {
	cases := []struct {
		name      string
		barrier   Barrier
		offsets   fakeOffsets
		want      int64
		wantError string
	}{
		{name: "committed at the barrier on every partition: applied",
			barrier: Barrier{0: 10, 1: 4},
			offsets: fakeOffsets{ends: map[int]int64{0: 12, 1: 4, 2: 9}, committed: map[int]int64{0: 10, 1: 4, 2: 1}}},
		{name: "a lagging partition outside the barrier does not hold the run back",
			barrier: Barrier{0: 10},
			offsets: fakeOffsets{ends: map[int]int64{0: 10, 1: 50}, committed: map[int]int64{0: 10}}},
		{name: "short of the barrier on one partition",
			barrier: Barrier{0: 10, 1: 4},
			offsets: fakeOffsets{ends: map[int]int64{0: 10, 1: 8}, committed: map[int]int64{0: 10, 1: 1}}, want: 3},
		{name: "a group that committed nothing has everything below the barrier to apply",
			barrier: Barrier{0: 10, 1: 4},
			offsets: fakeOffsets{ends: map[int]int64{0: 10, 1: 4}}, want: 14},
		{name: "events retention deleted before the group read them were never applied",
			barrier: Barrier{0: 10},
			offsets: fakeOffsets{first: map[int]int64{0: 8}, ends: map[int]int64{0: 10}, committed: map[int]int64{0: 2}}, want: 8},
		{name: "a log that ends before the barrier was re-created",
			barrier: Barrier{0: 10},
			offsets: fakeOffsets{ends: map[int]int64{0: 3}, committed: map[int]int64{0: 3}}, wantError: "the topic was re-created"},
		{name: "a partition that is gone",
			barrier: Barrier{3: 10},
			offsets: fakeOffsets{ends: map[int]int64{0: 3}}, wantError: "no longer in the topic"},
		{name: "an empty barrier is reached",
			barrier: Barrier{}, offsets: fakeOffsets{ends: map[int]int64{0: 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.offsets.topic = "membership"
			got, err := remaining(c.barrier, &c.offsets)
			if c.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantError) {
					t.Fatalf("error %v, want one saying %q", err, c.wantError)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Remaining = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

func TestEnds(t *testing.T) {
	kc := &fakeOffsets{topic: "membership", first: map[int]int64{1: 2}, ends: map[int]int64{0: 7, 1: 9}}
	got, err := Ends(context.Background(), kc, "membership")
	if err != nil || len(got) != 2 || got[0] != 7 || got[1] != 9 {
		t.Fatalf("Ends = %v, %v", got, err)
	}
	if _, err := Ends(context.Background(), kc, "other"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Ends of a missing topic: %v", err)
	}
}

func remaining(b Barrier, kc Offsets) (int64, error) {
	c, err := ReadCommitted(context.Background(), kc, "membership", "group")
	if err != nil {
		return 0, err
	}
	return b.Remaining(c)
}
