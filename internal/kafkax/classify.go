package kafkax

import (
	"context"
	"errors"
	"io"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/retry"
)

// Classify returns err marked retry.Permanent unless retrying the same
// request may succeed, and nil for nil. Permanent: an ended context (the
// caller gave up), a closed writer (io.ErrClosedPipe), a message the writer
// refuses as too large, and broker errors Kafka does not document as
// retriable (MessageSizeTooLarge, TopicAuthorizationFailed, InvalidTopic,
// ...). Everything else, network errors and timeouts above all, is worth
// retrying.
func Classify(err error) error {
	if err == nil || Retryable(err) || retry.IsPermanent(err) {
		return err
	}
	return retry.Permanent(err)
}

// Retryable reports whether retrying the request that failed with err may
// succeed (false for nil: there is nothing to retry). See Classify.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if retry.IsPermanent(err) {
		return false // judged already, where it happened
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrClosedPipe) {
		return false
	}
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return false
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) && !kerr.Temporary() && !kerr.Timeout() {
		return false
	}
	return true
}

// GenerationEnded reports whether err, from a consumer group's commit or
// heartbeat, means this member's generation is over (a rebalance started,
// or the member was dropped from the group): the partitions are someone
// else's now, so retrying the commit cannot succeed.
func GenerationEnded(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.FencedInstanceID)
}
