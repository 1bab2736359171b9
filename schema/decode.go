package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding the JSON value of a version-1 event has two paths:
//
//   - parseFast, a hand-written parser for the shape producers write: exactly
//     the ten field names, each at most once, in any order, string values with
//     any escape but \uD800-\uDFFF, integer values without fraction or
//     exponent, JSON whitespace anywhere. It never reports an error: on
//     anything else it gives up and leaves the value untouched.
//   - unmarshalWire, encoding/json with DisallowUnknownFields, which decides
//     everything parseFast gives up on (case-folded or escaped names, unknown
//     and duplicate fields, null, numbers that do not fit, surrogates, syntax
//     errors, trailing data, ...).
//
// So parseFast only has to agree with encoding/json on the values it accepts;
// every error, and its text, comes from encoding/json as before.
// FuzzDecodeMatchesEncodingJSON checks both the agreement and that Decode as a
// whole behaves exactly like the encoding/json-only implementation it replaced.

// unmarshalWire is the general decoder: encoding/json, strict about unknown
// fields and trailing data.
// It returns by value so that the caller's wireEvent, which parseFast fills,
// stays on the stack.
func unmarshalWire(b []byte) (wireEvent, error) {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return wireEvent{}, err
	}
	if dec.More() {
		return wireEvent{}, errors.New("trailing data after the JSON object")
	}
	return w, nil
}

// Field numbers for parseFast. The string fields come first so that their
// number indexes the spans array.
const (
	fEnv = iota
	fSegment
	fContextKind
	fContextKey
	fOp
	fRun
	fSource
	fTime
	nStringFields
	fGeneration = nStringFields
	fSeq        = nStringFields + 1
)

// fieldNumber returns the field number of a JSON object name as written,
// before unescaping, or -1.
func fieldNumber(name []byte) int {
	switch string(name) { // does not allocate
	case "env":
		return fEnv
	case "segment":
		return fSegment
	case "generation":
		return fGeneration
	case "context_kind":
		return fContextKind
	case "context_key":
		return fContextKey
	case "op":
		return fOp
	case "run":
		return fRun
	case "seq":
		return fSeq
	case "source":
		return fSource
	case "time":
		return fTime
	}
	return -1
}

// parseFast decodes b, which is valid UTF-8, into *w and reports true, or
// reports false and leaves *w alone if b is not of the common shape described
// above (whether or not it is valid). When it reports true, encoding/json
// would have decoded b to the same wireEvent without error.
//
// The unescaped strings share one allocation.
func parseFast(b []byte, w *wireEvent) bool {
	var (
		scratch    [512]byte
		buf        = scratch[:0] // unescaped string values, back to back
		spans      [nStringFields]struct{ start, end int }
		generation int
		seq        uint64
		seen       uint16
		ok         bool
	)
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	for {
		// Name. Only the exact spelling; anything else is for encoding/json.
		if i >= len(b) || b[i] != '"' {
			return false // includes "{}": rare, leave it to encoding/json
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return false
		}
		f := fieldNumber(b[i+1 : i+1+end])
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		i = skipSpace(b, i+end+2)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)

		// Value.
		switch f {
		case fGeneration:
			var neg bool
			var mag uint64
			if neg, mag, i, ok = parseInteger(b, i); !ok {
				return false
			}
			switch {
			case !neg && mag <= math.MaxInt:
				generation = int(mag)
			case neg && mag <= math.MaxInt:
				generation = -int(mag)
			case neg && mag == math.MaxInt+1:
				generation = math.MinInt
			default:
				return false
			}
		case fSeq:
			var neg bool
			if neg, seq, i, ok = parseInteger(b, i); !ok || neg {
				return false
			}
		default:
			start := len(buf)
			if buf, i, ok = appendUnquoted(buf, b, i); !ok {
				return false
			}
			spans[f].start, spans[f].end = start, len(buf)
		}

		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return false
	}
	s := string(buf)
	str := func(f int) string { return s[spans[f].start:spans[f].end] }
	*w = wireEvent{
		Env: str(fEnv), Segment: str(fSegment), Generation: generation,
		ContextKind: str(fContextKind), ContextKey: str(fContextKey), Op: str(fOp),
		Run: str(fRun), Seq: seq, Source: str(fSource), Time: str(fTime),
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// parseInteger parses the JSON number at b[i:] if it is an integer: an
// optional minus, then 0 or a non-zero digit and more digits. It returns the
// sign, the magnitude and the index after the last digit. It fails if the
// magnitude overflows uint64. It does not look past the digits: a fraction,
// exponent or extra leading zero makes the caller fail on the next byte.
func parseInteger(b []byte, i int) (neg bool, mag uint64, next int, ok bool) {
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return false, 0, i, false
	}
	if b[i] == '0' {
		return neg, 0, i + 1, true
	}
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			return false, 0, i, false
		}
		mag = mag*10 + d
	}
	return neg, mag, i, true
}

// appendUnquoted appends the contents of the JSON string at b[i:] to dst and
// returns the index after its closing quote. It fails on anything that is not
// a valid JSON string and on \u escapes of UTF-16 surrogates, whose handling
// (pairs, lone halves) it leaves to encoding/json. b is valid UTF-8, so the
// bytes between escapes are copied as they are, like encoding/json does.
func appendUnquoted(dst, b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return dst, i, false
	}
	i++
	start := i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return append(dst, b[start:i]...), i + 1, true
		case c < 0x20:
			return dst, i, false
		case c != '\\':
			i++
			continue
		}
		dst = append(dst, b[start:i]...)
		if i+1 >= len(b) {
			return dst, i, false
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok || utf16.IsSurrogate(r) {
				return dst, i, false
			}
			dst = utf8.AppendRune(dst, r)
			i += 4
		default:
			return dst, i, false
		}
		i += 2
		start = i
	}
	return dst, i, false // unterminated
}

// hex4 parses the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// keyEquals reports whether k is e.AppendKey(nil), without building it.
func (e *Event) keyEquals(k []byte) bool {
	for _, part := range [...]string{e.Env, e.Segment, e.ContextKind} {
		if len(k) <= len(part) || string(k[:len(part)]) != part || k[len(part)] != keySep {
			return false
		}
		k = k[len(part)+1:]
	}
	return string(k) == e.ContextKey
}
