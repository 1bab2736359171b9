package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Version is the schema version this package writes and the only one it reads.
const Version = 1

// Kafka header names. The version header is mandatory; the trace headers are
// whatever the configured OpenTelemetry propagator writes (traceparent, ...).
const (
	HeaderVersion = "cohortsync-schema-version"
	// HeaderDeadLetterReason carries, on a dead-lettered message, why it was
	// rejected.
	HeaderDeadLetterReason = "cohortsync-dead-letter-reason"
)

// Limits. MaxKeyBytes bounds context keys and the other identifiers: Redis and
// the SDKs accept more, but a key this long is a mistake in the source, and the
// bound keeps one bad row from making every downstream structure large.
const (
	MaxKeyBytes = 1024
)

// Op is the membership operation.
type Op uint8

// The operations. The zero value is invalid so that a forgotten field is caught.
const (
	OpAdd Op = iota + 1
	OpRemove
)

func (o Op) String() string {
	switch o {
	case OpAdd:
		return "add"
	case OpRemove:
		return "remove"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp parses "add" or "remove".
func ParseOp(s string) (Op, error) {
	switch s {
	case "add":
		return OpAdd, nil
	case "remove":
		return OpRemove, nil
	}
	return 0, fmt.Errorf("unknown op %q (want add or remove)", s)
}

// Event is one membership change.
type Event struct {
	Env         string    // environment; selects the Redis prefix on the consumer side
	Segment     string    // segment key, e.g. "amplitude-7khm89cz"
	Generation  int       // segment generation, >= 1
	ContextKind string    // e.g. "user"
	ContextKey  string    // the context key that the SDK hashes
	Op          Op        // add or remove
	Run         string    // the sync run that produced the event
	Seq         uint64    // grows per segment across runs, never reused
	Source      string    // csv, amplitude, api, ...
	Time        time.Time // when the producer created the event
}

// Ref is the segment reference stored in Redis include sets: "<segment>.g<generation>".
// The format is the layout's (bigsegments.Ref), defined once for the producer
// and the writer.
func Ref(segment string, generation int) string { return bigsegments.Ref(segment, generation) }

// Ref returns the event's segment reference.
func (e *Event) Ref() string { return Ref(e.Segment, e.Generation) }

// keySep separates the parts of a message key. Validate forbids it in every
// part but the last, so the key is unambiguous.
const keySep = 0x1f // ASCII unit separator

// AppendKey appends the Kafka message key of the event's membership to dst.
func (e *Event) AppendKey(dst []byte) []byte {
	dst = append(dst, e.Env...)
	dst = append(dst, keySep)
	dst = append(dst, e.Segment...)
	dst = append(dst, keySep)
	dst = append(dst, e.ContextKind...)
	dst = append(dst, keySep)
	return append(dst, e.ContextKey...)
}

// Validate checks every field and returns a *FieldError naming the first bad one.
func (e *Event) Validate() error {
	for _, f := range [...]struct {
		name, v string
		sepOK   bool
	}{
		{"env", e.Env, false},
		{"segment", e.Segment, false},
		{"context_kind", e.ContextKind, false},
		{"context_key", e.ContextKey, true},
		{"run", e.Run, true},
		{"source", e.Source, true},
	} {
		if err := CheckIdentifier(f.v); err != nil {
			return &FieldError{Field: f.name, Err: err}
		}
		if !f.sepOK && strings.IndexByte(f.v, keySep) >= 0 {
			return &FieldError{Field: f.name, Err: errors.New("contains the unit separator 0x1f")}
		}
	}
	if e.Generation < 1 {
		return &FieldError{Field: "generation", Err: fmt.Errorf("%d is not >= 1", e.Generation)}
	}
	if e.Op != OpAdd && e.Op != OpRemove {
		return &FieldError{Field: "op", Err: fmt.Errorf("%v is not add or remove", e.Op)}
	}
	if e.Seq == 0 {
		return &FieldError{Field: "seq", Err: errors.New("must be > 0")}
	}
	if e.Time.IsZero() {
		return &FieldError{Field: "time", Err: errors.New("missing")}
	}
	return nil
}

// Errors returned by CheckIdentifier.
var (
	ErrEmpty       = errors.New("empty")
	ErrTooLong     = fmt.Errorf("longer than %d bytes", MaxKeyBytes)
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
)

// IdentifierForm describes what CheckIdentifier accepts, for setting errors.
const IdentifierForm = "non-empty UTF-8 of at most 1024 bytes"

// CheckIdentifier applies the rules every key and name in an event obeys:
// non-empty, at most MaxKeyBytes, valid UTF-8. It takes bytes too, for a
// key that is encoded (Encoder) without being made a string.
func CheckIdentifier[S string | []byte](s S) error {
	switch {
	case len(s) == 0:
		return ErrEmpty
	case len(s) > MaxKeyBytes:
		return ErrTooLong
	case !validUTF8(s):
		return ErrInvalidUTF8
	}
	return nil
}

// validUTF8 is utf8.ValidString or utf8.Valid, as S is.
func validUTF8[S string | []byte](s S) bool {
	if b, ok := any(s).([]byte); ok {
		return utf8.Valid(b)
	}
	return utf8.ValidString(string(s))
}

// FieldError says which field of an event is wrong.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// DecodeError is returned for any message that is not a valid event of a known
// version. It is permanent: decoding the same bytes again fails the same way.
type DecodeError struct {
	Reason string // short, stable, fit for a header or a metric label
	Err    error
}

func (e *DecodeError) Error() string {
	return "decode membership event: " + e.Reason + ": " + e.Err.Error()
}
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrUnknownVersion is wrapped by the DecodeError of a message whose version
// header is missing or not Version.
var ErrUnknownVersion = errors.New("unknown schema version")

// wireEvent is the JSON shape of version 1. Field names are short but readable;
// membership-v1.schema.json documents them.
type wireEvent struct {
	Env         string `json:"env"`
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	ContextKind string `json:"context_kind"`
	ContextKey  string `json:"context_key"`
	Op          string `json:"op"`
	Run         string `json:"run"`
	Seq         uint64 `json:"seq"`
	Source      string `json:"source"`
	Time        string `json:"time"`
}

// AppendValue appends the JSON value of the event to dst. It is hand-written
// because the producer encodes millions of events per run and encoding/json's
// reflection dominated the profile; TestAppendValueMatchesEncodingJSON keeps
// the two identical. Its parts, which Encoder uses too, are split where the
// fields that differ between the events of one stream begin and end.
func (e *Event) AppendValue(dst []byte) []byte {
	dst = e.appendValueHead(dst)
	dst = appendString(dst, e.ContextKey)
	dst = appendValueOp(dst, e.Op)
	dst = e.appendValueRun(dst)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	return e.appendValueTail(dst)
}

// appendValueHead appends the value up to the context key.
func (e *Event) appendValueHead(dst []byte) []byte {
	dst = append(dst, `{"env":`...)
	dst = appendString(dst, e.Env)
	dst = append(dst, `,"segment":`...)
	dst = appendString(dst, e.Segment)
	dst = append(dst, `,"generation":`...)
	dst = strconv.AppendInt(dst, int64(e.Generation), 10)
	dst = append(dst, `,"context_kind":`...)
	dst = appendString(dst, e.ContextKind)
	return append(dst, `,"context_key":`...)
}

// appendValueOp appends the op field, after the context key.
func appendValueOp(dst []byte, op Op) []byte {
	dst = append(dst, `,"op":"`...)
	dst = append(dst, op.String()...)
	return append(dst, '"')
}

// appendValueRun appends the run field, after the op, and the name of the
// seq field.
func (e *Event) appendValueRun(dst []byte) []byte {
	dst = append(dst, `,"run":`...)
	dst = appendString(dst, e.Run)
	return append(dst, `,"seq":`...)
}

// appendValueTail appends the value after the seq.
func (e *Event) appendValueTail(dst []byte) []byte {
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string with the same escaping as
// encoding/json (HTML-safe, U+2028/2029 escaped). s is valid UTF-8 (Validate).
// It takes bytes too, so that Encoder writes a context key without making
// it a string first.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are E2 80 A8 and E2 80 A9. The other bytes of
		// a multi-byte rune are copied one at a time: none is E2 but a
		// rune's first, so no rune is misread.
		if c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]-0xa0])
			i += 3
			start = i
			continue
		}
		i++
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Message returns the Kafka message for the event: membership key, JSON value,
// version header. Callers add trace headers (see HeaderCarrier).
func (e *Event) Message() kafka.Message {
	return kafka.Message{
		Key:     e.AppendKey(nil),
		Value:   e.AppendValue(nil),
		Headers: []kafka.Header{{Key: HeaderVersion, Value: versionBytes}},
	}
}

var versionBytes = []byte(strconv.Itoa(Version))

// Decode parses and validates a Kafka message. Every failure is a *DecodeError.
// The message key must match the value, so that compaction and partitioning,
// which only see the key, agree with what the consumer applies.
//
// The value is read by a hand-written parser when it has the shape that
// AppendValue writes, and by encoding/json otherwise (see decode.go); either
// way the result is what encoding/json with DisallowUnknownFields gives. The
// strings of the returned event share one allocation. After the hand-written
// parser the checks take shortcuts too (decodeFast); their results and errors
// are those of ParseOp, time.Parse and Validate.
func Decode(m *kafka.Message) (Event, error) {
	v, ok := header(m.Headers, HeaderVersion)
	if !ok {
		return Event{}, &DecodeError{Reason: "missing_version", Err: fmt.Errorf("%w: no %s header", ErrUnknownVersion, HeaderVersion)}
	}
	if !bytes.Equal(v, versionBytes) {
		return Event{}, &DecodeError{Reason: "unknown_version", Err: fmt.Errorf("%w: %q (this build reads %d)", ErrUnknownVersion, truncate(v), Version)}
	}
	var p fastValue
	if parseFast(m.Value, &p) { // implies valid UTF-8
		return p.decodeFast(m.Value, m.Key)
	}
	if !utf8.Valid(m.Value) {
		return Event{}, &DecodeError{Reason: "invalid_utf8", Err: errors.New("value is not valid UTF-8")}
	}
	w, err := unmarshalWire(m.Value)
	if err != nil {
		return Event{}, &DecodeError{Reason: "invalid_json", Err: err}
	}
	op, err := ParseOp(w.Op)
	if err != nil {
		return Event{}, opError(w.Op)
	}
	t, err := parseTime(w.Time)
	if err != nil {
		return Event{}, err
	}
	ev := Event{
		Env: w.Env, Segment: w.Segment, Generation: w.Generation,
		ContextKind: w.ContextKind, ContextKey: w.ContextKey, Op: op,
		Run: w.Run, Seq: w.Seq, Source: w.Source, Time: t,
	}
	if err := ev.Validate(); err != nil {
		return Event{}, &DecodeError{Reason: "invalid_field", Err: err}
	}
	if !ev.keyEquals(m.Key) {
		return Event{}, keyMismatchError(m.Key)
	}
	return ev, nil
}

// opError is the DecodeError for an op field that ParseOp rejects.
func opError(s string) error {
	_, err := ParseOp(s)
	if s == "" {
		err = errors.New("missing")
	}
	return &DecodeError{Reason: "invalid_field", Err: &FieldError{Field: "op", Err: err}}
}

// parseTime parses the time field, failing with a DecodeError.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if s == "" {
			err = errors.New("missing")
		}
		return time.Time{}, &DecodeError{Reason: "invalid_field", Err: &FieldError{Field: "time", Err: err}}
	}
	return t, nil
}

// keyMismatchError is the DecodeError for a message key that is not the
// value's membership.
func keyMismatchError(key []byte) error {
	return &DecodeError{Reason: "key_mismatch", Err: fmt.Errorf("message key %q does not identify the membership in the value", truncate(key))}
}

func header(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// truncate keeps error messages bounded when a message carries garbage.
func truncate(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
