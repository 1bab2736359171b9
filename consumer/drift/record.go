package drift

import (
	"encoding/binary"
	"errors"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/schema"
)

// A membership's identity is encoded as uvarint-length-prefixed fields,
// destination index, segment key and context key, then the generation in
// 4 bytes big endian. The encoding is prefix-free, so records that start
// with an identity sort by identity first, whatever follows it, and the
// records of one identity are adjacent; so are the generations of one
// membership key (destination, segment, context key), which compaction
// treats as one (the message key has no generation).
func appendIdentity(dst []byte, dest int, ref, key string) []byte {
	segment, gen := splitRef(ref)
	dst = binary.AppendUvarint(dst, uint64(dest))
	dst = binary.AppendUvarint(dst, uint64(len(segment)))
	dst = append(dst, segment...)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return binary.BigEndian.AppendUint32(dst, uint32(gen))
}

// splitRef is bigsegments.ParseRef, with a ref it cannot parse kept whole
// as generation 0 (the segments index holds only refs the Writer made).
func splitRef(ref string) (string, int) {
	if segment, gen, ok := bigsegments.ParseRef(ref); ok {
		return segment, gen
	}
	return ref, 0
}

// identity is a decoded identity.
type identity struct {
	dest         int
	segment, key string
	gen          int
}

func (id identity) ref() string {
	if id.gen == 0 {
		return id.segment
	}
	return bigsegments.Ref(id.segment, id.gen)
}

// parseIdentity splits b into its identity, the identity's encoding (the
// membership key's being enc[:len(enc)-4]), and the rest.
func parseIdentity(b []byte) (id identity, enc, rest []byte, err error) {
	var n int
	d, k := binary.Uvarint(b)
	if k <= 0 {
		return id, nil, nil, errBadRecord
	}
	n += k
	id.dest = int(d)
	for _, f := range []*string{&id.segment, &id.key} {
		l, k := binary.Uvarint(b[n:])
		if k <= 0 || uint64(len(b)-n-k) < l {
			return id, nil, nil, errBadRecord
		}
		n += k
		*f = string(b[n : n+int(l)])
		n += int(l)
	}
	if len(b)-n < 4 {
		return id, nil, nil, errBadRecord
	}
	id.gen = int(binary.BigEndian.Uint32(b[n:]))
	n += 4
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
