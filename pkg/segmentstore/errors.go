package segmentstore

import (
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrorClass says what a Redis error means for a batch of changes.
type ErrorClass int

const (
	// ClassOK means no error.
	ClassOK ErrorClass = iota
	// ClassEvent means the change's keys are unusable (they hold another type);
	// the change cannot be applied, the rest of the batch can. The consumer
	// dead-letters the event.
	ClassEvent
	// ClassTransient means the server may be fine a moment later; retry the
	// whole batch, which is idempotent.
	ClassTransient
	// ClassFatal means a configuration or programming error that would hit
	// every change alike; retrying cannot help, stop.
	ClassFatal
)

func (c ErrorClass) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassEvent:
		return "event"
	case ClassTransient:
		return "transient"
	case ClassFatal:
		return "fatal"
	}
	return "ErrorClass(" + strconv.Itoa(int(c)) + ")"
}

// ErrFatal is wrapped by the errors of Apply that retrying cannot fix
// (ClassFatal): errors.Is(err, ErrFatal) tells them from transient ones.
var ErrFatal = errors.New("segmentstore: fatal redis error")

// fatalError marks err as fatal without changing its message.
type fatalError struct{ err error }

func fatal(err error) error { return &fatalError{err} }

func (e *fatalError) Error() string        { return e.err.Error() }
func (e *fatalError) Unwrap() error        { return e.err }
func (e *fatalError) Is(target error) bool { return target == ErrFatal }

// Classify maps a per-command Redis error to its class. Only WRONGTYPE is
// blamed on the change: it is the one error that depends on the data at the
// change's keys. Errors that would hit every change alike (NOPERM, NOAUTH,
// unknown command) are fatal, so that a misconfigured deployment stops
// rather than dead-letters the whole stream.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassOK
	}
	if redis.HasErrorPrefix(err, "WRONGTYPE") ||
		// Redis 6 and older wrap an error raised inside a script:
		// "ERR Error running script ... WRONGTYPE Operation against ...".
		redis.HasErrorPrefix(err, "Error running script") && strings.Contains(err.Error(), "WRONGTYPE") {
		return ClassEvent
	}
	if errors.Is(err, redis.ErrClosed) {
		return ClassFatal
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Network errors, timeouts, EOF, pool exhaustion, cancelled
		// contexts: the server may be fine a moment later.
		return ClassTransient
	}
	if redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err) {
		return ClassTransient
	}
	if _, ok := redis.IsMovedError(err); ok {
		return ClassTransient // a resharding go-redis did not follow in its retries
	}
	if _, ok := redis.IsAskError(err); ok {
		return ClassTransient
	}
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS", "OOM", "max number of clients"} {
		if redis.HasErrorPrefix(err, p) {
			return ClassTransient
		}
	}
	return ClassFatal
}
