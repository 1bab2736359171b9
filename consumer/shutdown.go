package consumer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Shutdown bounds. Run returns within ShutdownTimeout plus shutdownSlack
// plus leaveBudget of its context ending, whatever hangs: a Redis that
// stopped answering mid-batch (go-redis reads until its own read timeout,
// and retries), a broker holding this member's JoinGroup during a pending
// rebalance (kafka-go's ConsumerGroup.Close waits for it, up to the
// rebalance timeout). The whole process then exits within ShutdownTimeout
// plus a second.
const (
	// shutdownSlack is how long past ShutdownTimeout Run still waits for
	// the pipeline: the batch's own grace (processWithGrace) ends first.
	shutdownSlack = 250 * time.Millisecond
	// leaveBudget is what leaving the group and closing the dead-letter
	// writer get after that.
	leaveBudget = 400 * time.Millisecond
	// leaveAfter is how long Run lets kafka-go leave the group before it
	// sends the LeaveGroup request itself.
	leaveAfter = 300 * time.Millisecond
	// joinWaitLog is how long joining the group may take before the wait
	// is logged with what it waits for.
	joinWaitLog = 5 * time.Second
)

// shutdownClock measures Run's stop: soft closes ShutdownTimeout plus
// shutdownSlack after ctx ended, hard leaveBudget later. Its goroutine ends
// when it has fired both or stop is called.
type shutdownClock struct {
	soft, hard chan struct{}
	hardAt     chan time.Time // the hard deadline, once ctx ended
	quit       chan struct{}
	once       sync.Once
}

func newShutdownClock(ctx context.Context, timeout time.Duration) *shutdownClock {
	k := &shutdownClock{soft: make(chan struct{}), hard: make(chan struct{}), hardAt: make(chan time.Time, 1), quit: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
		case <-k.quit:
			return
		}
		soft := time.Now().Add(timeout + shutdownSlack)
		k.hardAt <- soft.Add(leaveBudget)
		for _, step := range []struct {
			at time.Time
			ch chan struct{}
		}{{soft, k.soft}, {soft.Add(leaveBudget), k.hard}} {
			t := time.NewTimer(time.Until(step.at))
			select {
			case <-t.C:
				close(step.ch)
			case <-k.quit:
				t.Stop()
				return
			}
		}
	}()
	return k
}

func (k *shutdownClock) stop() { k.once.Do(func() { close(k.quit) }) }

// deadline is the hard deadline; call it only once ctx has ended.
func (k *shutdownClock) deadline() time.Time {
	t := <-k.hardAt
	k.hardAt <- t
	return t
}

// await waits for done until limit closes, and tells whether done came.
func await(done <-chan struct{}, limit <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-limit:
		return false
	}
}

// goDone runs f in a goroutine and returns a channel closed when it returns.
// A caller that stops waiting abandons the goroutine: only for the calls of
// a shutdown, which may hang on a dead peer while the process exits.
func goDone(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return done
}

// leaveGroup leaves the group (kafka-go's Close) within the hard deadline;
// when Close is held up (a JoinGroup pending at the broker during a
// rebalance), it sends LeaveGroup for this member itself, so that the
// group's other members, and this one restarted, need not wait for its
// session to time out.
func (c *Consumer) leaveGroup(ctx context.Context, closed <-chan struct{}, k *shutdownClock) {
	t := time.NewTimer(leaveAfter)
	defer t.Stop()
	select {
	case <-closed:
		return
	case <-k.hard:
	case <-t.C:
	}
	member, _ := c.memberID.Load().(string)
	if member != "" {
		lctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), k.deadline())
		res, err := c.kf.Client(0).LeaveGroup(lctx, &kafka.LeaveGroupRequest{GroupID: c.cfg.GroupID, Members: []kafka.LeaveGroupRequestMember{{ID: member}}})
		cancel()
		if err == nil {
			err = res.Error
		}
		if err != nil {
			c.log.Warn("shutdown: leaving the consumer group failed; the group waits for this member's session to time out", "member", member, "session_timeout", c.groupConfig().SessionTimeout, "err", err)
		} else {
			c.log.Info("shutdown: left the consumer group directly (kafka-go's close was still waiting, on the pipeline or on a join pending at the broker)", "member", member)
		}
	}
	// Once this member has left, kafka-go's close only waits for what
	// this member no longer needs: give it a moment, not the whole
	// deadline.
	var limit <-chan struct{} = k.hard
	if member != "" {
		lctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), k.deadline())
		lctx, cancel2 := context.WithTimeout(lctx, leaveBudget)
		defer cancel()
		defer cancel2()
		limit = lctx.Done()
	}
	if !await(closed, limit) {
		c.log.Warn("shutdown: stopped waiting for the consumer group to close", "waited_for", "the pipeline, or a join pending at the broker (rebalance in progress)")
	}
}

// describeBatch says which messages a batch holds: its size and, per
// partition, the offsets, for the log line of an abandoned batch.
func describeBatch(batch []item) (n int, offsets string) {
	lo, hi := map[int]int64{}, map[int]int64{}
	for i := range batch {
		p, o := batch[i].msg.Partition, batch[i].msg.Offset
		if l, ok := lo[p]; !ok || o < l {
			lo[p] = o
		}
		hi[p] = max(hi[p], o)
	}
	parts := make([]int, 0, len(lo))
	for p := range lo {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d-%d", p, lo[p], hi[p])
	}
	return len(batch), b.String()
}

// logAbandoned logs a batch in flight as abandoned (at a stop, or a
// rebalance that ended its generation): it stays uncommitted, and whoever
// owns its partitions next applies it again.
func (c *Consumer) logAbandoned(batch []item, why string) {
	n, offsets := describeBatch(batch)
	c.log.Warn("batch abandoned uncommitted; its messages will be applied again by the partitions' next owner",
		"why", why, "messages", n, "offsets", offsets, "shutdown_timeout", c.cfg.ShutdownTimeout)
}
