package schema

import "strconv"

// Encoder encodes the messages of a stream of events that differ only in
// their context key, op and seq: the parts of the key and value the
// events share are encoded once, by the same code as Event.AppendKey and
// Event.AppendValue, and each event appends only its own fields. The
// context key is bytes, so a caller holding bytes converts nothing.
type Encoder struct {
	key  []byte // the key before the context key
	head []byte // the value before the context key
	run  []byte // the value from the run to the seq
	tail []byte // the value after the seq
}

// NewEncoder returns the Encoder of the events equal to template but for
// ContextKey, Op and Seq, which it ignores. template is not validated.
func NewEncoder(template *Event) *Encoder {
	t := *template
	t.ContextKey = ""
	// One array for the four parts.
	buf := t.AppendKey(make([]byte, 0, 512))
	enc := &Encoder{key: buf[:len(buf):len(buf)]}
	start := len(buf)
	buf = t.appendValueHead(buf)
	enc.head = buf[start:len(buf):len(buf)]
	start = len(buf)
	buf = t.appendValueRun(buf)
	enc.run = buf[start:len(buf):len(buf)]
	start = len(buf)
	buf = t.appendValueTail(buf)
	enc.tail = buf[start:len(buf):len(buf)]
	return enc
}

// AppendKey appends the message key of the event with contextKey to dst:
// what Event.AppendKey appends.
func (enc *Encoder) AppendKey(dst, contextKey []byte) []byte {
	dst = append(dst, enc.key...)
	return append(dst, contextKey...)
}

// AppendValue appends the JSON value of the event with contextKey, op and
// seq to dst: what Event.AppendValue appends.
func (enc *Encoder) AppendValue(dst, contextKey []byte, op Op, seq uint64) []byte {
	dst = append(dst, enc.head...)
	dst = appendString(dst, contextKey)
	dst = appendValueOp(dst, op)
	dst = append(dst, enc.run...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, enc.tail...)
}
