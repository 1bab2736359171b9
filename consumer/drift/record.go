package drift

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cohortsync/cohortsync/schema"
)

// A membership's identity is encoded as uvarint-length-prefixed fields:
// destination index, segment ref, context key. The encoding is prefix-free,
// so records that start with an identity sort by identity first, whatever
// follows it, and the records of one identity are adjacent.
func appendIdentity(dst []byte, dest int, ref, key string) []byte {
	dst = binary.AppendUvarint(dst, uint64(dest))
	dst = binary.AppendUvarint(dst, uint64(len(ref)))
	dst = append(dst, ref...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	return append(dst, key...)
}

// identity is a decoded identity; ref and key alias the record.
type identity struct {
	dest     int
	ref, key []byte
}

// parseIdentity splits b into its identity, the identity's encoding, and
// the rest.
func parseIdentity(b []byte) (id identity, enc, rest []byte, err error) {
	var n int
	d, k := binary.Uvarint(b)
	if k <= 0 {
		return id, nil, nil, errBadRecord
	}
	n += k
	id.dest = int(d)
	for _, f := range []*[]byte{&id.ref, &id.key} {
		l, k := binary.Uvarint(b[n:])
		if k <= 0 || uint64(len(b)-n-k) < l {
			return id, nil, nil, errBadRecord
		}
		n += k
		*f = b[n : n+int(l)]
		n += int(l)
	}
	return id, b[:n], b[n:], nil
}

var errBadRecord = errors.New("drift: malformed sort record")

// A log record is the identity followed by the event's position (partition
// and offset, big endian: later events sort after earlier ones of the same
// membership), op, sequence number, context kind and run.
func appendLogRecord(dst []byte, dest int, ev *schema.Event, partition int, offset int64) []byte {
	dst = appendIdentity(dst, dest, ev.Ref(), ev.ContextKey)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = append(dst, byte(ev.Op))
	dst = binary.BigEndian.AppendUint64(dst, ev.Seq)
	dst = binary.AppendUvarint(dst, uint64(len(ev.ContextKind)))
	dst = append(dst, ev.ContextKind...)
	return append(dst, ev.Run...)
}

// logEvent is what a log record keeps of its event.
type logEvent struct {
	op        schema.Op
	seq       uint64
	kind, run string
}

func parseLogRest(rest []byte) (logEvent, error) {
	const fixed = 4 + 8 + 1 + 8
	if len(rest) < fixed {
		return logEvent{}, errBadRecord
	}
	ev := logEvent{op: schema.Op(rest[12]), seq: binary.BigEndian.Uint64(rest[13:21])}
	rest = rest[fixed:]
	l, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < l {
		return logEvent{}, errBadRecord
	}
	ev.kind = string(rest[k : k+int(l)])
	ev.run = string(rest[k+int(l):])
	return ev, nil
}

// sameIdentity compares two identity encodings.
func sameIdentity(a, b []byte) bool { return bytes.Equal(a, b) }

func (id identity) String() string { return fmt.Sprintf("%s of %s", id.key, id.ref) }
