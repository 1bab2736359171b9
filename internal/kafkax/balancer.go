package kafkax

import (
	"bytes"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

// keyHash partitions as kafka.Hash does (FNV-1a of the key, as Sarama's
// hashPartitioner; round-robin for a nil key), a hash that is computed one
// byte after the other. The keys of a membership topic are
// "<env>\x1f<segment>\x1f<kind>\x1f<context key>", and the messages of a
// write share all but the context key: keyHash remembers the hash of the
// last key's part up to its last unit separator and hashes only the rest
// of a key that starts with it. It was a tenth of the producer's CPU per
// event (issue 12); TestKeyHashPartitionsAsKafkaHash keeps the partitions
// the same.
type keyHash struct {
	nilKeys kafka.Hash // round-robin, as kafka.Hash's own
	last    atomic.Pointer[hashedPrefix]
}

// hashedPrefix is the start of a key and its FNV-1a hash.
type hashedPrefix struct {
	prefix []byte
	sum    uint32
}

// FNV-1a, 32 bits, as hash/fnv.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

func fnv1a(h uint32, b []byte) uint32 {
	for _, c := range b {
		h ^= uint32(c)
		h *= fnvPrime
	}
	return h
}

func (h *keyHash) Balance(msg kafka.Message, partitions ...int) int {
	key := msg.Key
	if key == nil {
		return h.nilKeys.Balance(msg, partitions...)
	}
	var sum uint32
	if p := h.last.Load(); p != nil && bytes.HasPrefix(key, p.prefix) {
		sum = fnv1a(p.sum, key[len(p.prefix):])
	} else if i := bytes.LastIndexByte(key, keySeparator); i >= 0 {
		p := &hashedPrefix{prefix: bytes.Clone(key[:i+1]), sum: fnv1a(fnvOffset, key[:i+1])}
		h.last.Store(p)
		sum = fnv1a(p.sum, key[i+1:])
	} else {
		sum = fnv1a(fnvOffset, key)
	}
	// As kafka.Hash: the hash as an int32, its remainder made positive.
	partition := int32(sum) % int32(len(partitions))
	if partition < 0 {
		partition = -partition
	}
	return int(partition)
}

// keySeparator ends the parts of a membership key (schema's keySep). The
// partitions do not depend on it, only how much of a key is hashed once.
const keySeparator = 0x1f
