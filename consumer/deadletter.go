package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/schema"
)

// Headers added to a dead-lettered message, beside its original headers and
// schema.HeaderDeadLetterReason. They say where the message came from, so an
// operator can find it, fix the cause and replay it.
const (
	HeaderDeadLetterError = "cohortsync-dead-letter-error"     // the full error, at most maxErrorHeader bytes
	HeaderSourceTopic     = "cohortsync-source-topic"          // topic the message was consumed from
	HeaderSourcePartition = "cohortsync-source-partition"      // its partition, decimal
	HeaderSourceOffset    = "cohortsync-source-offset"         // its offset, decimal
	HeaderTruncated       = "cohortsync-dead-letter-truncated" // original value length, when the value had to be dropped
)

const maxErrorHeader = 1024

// MaxSeq is the highest sequence number the consumer applies: 2^53-1, the
// largest integer every JSON reader (JavaScript's included) holds exactly.
// No producer of ours gets near it (a segment would need a million events a
// second for 285 years); an event above it comes from another writer, and
// applying it would pin the segment's last_seq and last_run there for good
// (they only move forward) and push the producer's shared counter, which
// numbers on from the highest applied sequence, to the edge of uint64.
const MaxSeq = 1<<53 - 1

// ReasonSeqOutOfRange is the dead-letter reason of an event whose sequence
// number is above MaxSeq. Part of the dead-letter topic's contract.
const ReasonSeqOutOfRange = "seq_out_of_range"

// messageWriter is what dead-lettering needs from a kafka.Writer.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// deadLetter returns the dead-letter copy of m: same key, value and headers,
// plus why and where from. Dead-letter headers already on m (a dead letter
// replayed into the topic that failed again) are replaced, not repeated.
func deadLetter(m *kafka.Message, reason string, cause error) kafka.Message {
	msg := cause.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	hs := make([]kafka.Header, 0, len(m.Headers)+5)
	for _, h := range m.Headers {
		switch h.Key {
		case schema.HeaderDeadLetterReason, HeaderDeadLetterError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset, HeaderTruncated:
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs,
		kafka.Header{Key: schema.HeaderDeadLetterReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDeadLetterError, Value: []byte(strings.ToValidUTF8(msg, "\uFFFD"))},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: hs}
}

// truncated drops m's value, recording its length, for a dead letter the
// dead-letter topic refuses as too large: the headers still say where the
// original is, and a stuck partition would be worse.
func truncated(m kafka.Message) kafka.Message {
	if m.Value == nil {
		return m
	}
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
	m.Value = nil
	return m
}

// writeAttempt writes pending and returns what is still pending: the
// messages that failed transiently (retry them), or a permanent error.
func writeAttempt(ctx context.Context, w messageWriter, pending []kafka.Message) ([]kafka.Message, error) {
	err := w.WriteMessages(ctx, pending...)
	if err == nil {
		return nil, nil
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		// The writer refused one message before sending anything and does not
		// say which by index; truncating every value is safe, they are only
		// evidence.
		out := make([]kafka.Message, len(pending))
		for i, m := range pending {
			out[i] = truncated(m)
		}
		return out, fmt.Errorf("dead-letter message too large, retrying without values: %w", err)
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(pending) {
		return pending, kafkax.Classify(err)
	}
	var (
		retry []kafka.Message
		first error
	)
	for i, e := range werrs {
		if e == nil {
			continue
		}
		if errors.Is(e, kafka.MessageSizeTooLarge) {
			retry = append(retry, truncated(pending[i]))
		} else if !kafkax.Retryable(e) {
			return nil, kafkax.Classify(e)
		} else {
			retry = append(retry, pending[i])
		}
		if first == nil {
			first = e
		}
	}
	return retry, fmt.Errorf("%d of %d dead letters not written: %w", len(retry), len(pending), first)
}

// deadLettered is what the log says of one dead letter.
type deadLettered struct {
	partition int
	offset    int64
	reason    string
	err       error
}

func deadByReason(ds []deadLettered) map[string]int {
	if len(ds) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, d := range ds {
		out[d.reason]++
	}
	return out
}

// Dead-letter log lines: at most deadLetterLogBurst per deadLetterLogWindow,
// so that a flood of bad messages is visible without drowning the log;
// the lines left out are counted in the next one.
const (
	deadLetterLogBurst  = 20
	deadLetterLogWindow = 10 * time.Second
)

// logLimit is the dead-letter log's rate limit, shared by the streams.
type logLimit struct {
	mu          sync.Mutex
	windowStart time.Time
	n           int
	suppressed  int
}

// allow tells whether a line may be logged now, and how many were left out
// since the last one that was.
func (l *logLimit) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= deadLetterLogWindow {
		l.windowStart, l.n = now, 0
	}
	if l.n >= deadLetterLogBurst {
		l.suppressed++
		return false, 0
	}
	l.n++
	left := l.suppressed
	l.suppressed = 0
	return true, left
}

// logDeadLetters logs each dead letter written, rate-limited: partition,
// offset, reason and error, the facts an operator needs to find it in the
// dead-letter topic.
func (c *Consumer) logDeadLetters(ds []deadLettered) {
	now := time.Now()
	for _, d := range ds {
		ok, left := c.deadLog.allow(now)
		if !ok {
			continue
		}
		attrs := []any{"topic", c.cfg.Topic, "partition", d.partition, "offset", d.offset, "reason", d.reason, "err", d.err,
			"dead_letter_topic", c.cfg.DeadLetterTopic}
		if left > 0 {
			attrs = append(attrs, "not_logged_before", left)
		}
		c.log.Warn("message dead-lettered", attrs...)
	}
}
