package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding the JSON value of a version-1 event has two paths:
//
//   - parseFast, a hand-written parser for the shape producers write: exactly
//     the ten field names, each at most once, in any order, string values with
//     any escape but \uD800-\uDFFF, integer values without fraction or
//     exponent, JSON whitespace anywhere, and UTF-8 that is valid. It never
//     reports an error: on anything else it gives up, and Decode checks the
//     UTF-8 and hands the value to unmarshalWire.
//   - unmarshalWire, encoding/json with DisallowUnknownFields, which decides
//     everything parseFast gives up on (case-folded or escaped names, unknown
//     and duplicate fields, null, numbers that do not fit, surrogates, syntax
//     errors, trailing data, ...).
//
// So parseFast only has to agree with encoding/json on the values it accepts;
// every error, and its text, comes from encoding/json as before. What follows
// the parse (op, time, validation, key) has a fast path too, decodeFast, which
// on anything unusual asks the functions the reference uses (ParseOp,
// time.Parse, Event.Validate) so that the error is theirs.
// FuzzDecodeMatchesEncodingJSON checks both the agreement and that Decode as a
// whole behaves exactly like the encoding/json-only implementation it replaced.

// unmarshalWire is the general decoder: encoding/json, strict about unknown
// fields and trailing data.
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

// Field numbers for parseFast. The identifier fields come first, in the order
// Event.Validate checks them, then the other string fields, so that their
// number indexes the spans array.
const (
	fEnv = iota
	fSegment
	fContextKind
	fContextKey
	fRun
	fSource
	fOp
	fTime
	nStringFields
	fGeneration = nStringFields
	fSeq        = nStringFields + 1
	nFields     = nStringFields + 2
)

// nIdentFields is the number of identifier fields, which come first.
const nIdentFields = fOp

// namesWithColon are the JSON object names by field number as AppendValue
// writes them: quoted and followed by the colon.
var namesWithColon = [nFields]string{
	fEnv: `"env":`, fSegment: `"segment":`, fGeneration: `"generation":`,
	fContextKind: `"context_kind":`, fContextKey: `"context_key":`, fOp: `"op":`,
	fRun: `"run":`, fSeq: `"seq":`, fSource: `"source":`, fTime: `"time":`,
}

// writeOrder is the order in which AppendValue writes the fields. parseFast
// tries the name that comes next in it first, which spares it the search for
// the closing quote and the name lookup.
var writeOrder = [nFields]int{fEnv, fSegment, fGeneration, fContextKind, fContextKey, fOp, fRun, fSeq, fSource, fTime}

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

// span is where the contents of a JSON string (between its quotes, still
// escaped) are in the value.
type span struct{ start, end int }

// fastValue is what parseFast reads from a value: where the string values are,
// which need unescaping, and the numbers. A field that is absent has an empty
// span and a zero number, as encoding/json leaves it.
type fastValue struct {
	spans      [nStringFields]span
	escaped    uint16 // bit 1<<f: string field f contains an escape
	sep        uint16 // bit 1<<f: string field f unescapes to contain keySep
	generation int
	seq        uint64
}

// parseFast parses b into *p and reports true, or reports false if b is not of
// the common shape described above (whether or not it is valid, and whether or
// not it is valid UTF-8). When it reports true, b is valid UTF-8 and
// encoding/json would have decoded it without error to p.wire(b).
func parseFast(b []byte, p *fastValue) bool {
	var (
		seen uint16
		ok   bool
	)
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	for k := 0; ; k++ {
		// Name. Only the exact spelling; anything else is for encoding/json.
		f := -1
		if k < nFields {
			if n := namesWithColon[writeOrder[k]]; len(b)-i >= len(n) && string(b[i:i+len(n)]) == n {
				f = writeOrder[k]
				i += len(n)
			}
		}
		if f < 0 {
			if i >= len(b) || b[i] != '"' {
				return false // includes "{}": rare, leave it to encoding/json
			}
			end := bytes.IndexByte(b[i+1:], '"')
			if end < 0 {
				return false
			}
			if f = fieldNumber(b[i+1 : i+1+end]); f < 0 {
				return false
			}
			i = skipSpace(b, i+end+2)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i++
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		i = skipSpace(b, i)

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
				p.generation = int(mag)
			case neg && mag <= math.MaxInt:
				p.generation = -int(mag)
			case neg && mag == math.MaxInt+1:
				p.generation = math.MinInt
			default:
				return false
			}
		case fSeq:
			var neg bool
			if neg, p.seq, i, ok = parseInteger(b, i); !ok || neg {
				return false
			}
		default:
			if i >= len(b) || b[i] != '"' {
				return false
			}
			start := i + 1
			var esc, sep bool
			if i, esc, sep, ok = scanString(b, start); !ok {
				return false
			}
			p.spans[f] = span{start, i - 1}
			if esc {
				p.escaped |= 1 << f
			}
			if sep {
				p.sep |= 1 << f
			}
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
	return skipSpace(b, i+1) == len(b)
}

// plainStringByte[c] is true for the bytes that stand for themselves in a JSON
// string and are UTF-8 on their own: ASCII but controls, quote and backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Bytes repeated in every byte of a word, for notPlain.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// notPlain returns a word whose lowest set bit is the high bit of the first
// byte of x (little endian) that plainStringByte rejects, or 0 if there is
// none: a non-ASCII byte, a control byte, a quote or a backslash. (The tests
// for "less than" and "equal" borrow across bytes, so they may also flag
// bytes after the first true one; never one before it.)
func notPlain(x uint64) uint64 {
	// (y - ones*n) &^ y flags the bytes of y below n (n <= 0x80); a byte of x
	// equal to c is a zero byte of x ^ ones*c. Written out so that it inlines.
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return (x | (x-ones*0x20)&^x | (q-ones)&^q | (bs-ones)&^bs) & highs
}

// scanString checks the JSON string whose contents start at b[i], after the
// opening quote, and returns the index after its closing quote and whether it
// contains escapes and an escaped keySep. It fails on anything that is not a
// valid JSON string, on invalid UTF-8 and on \u escapes of UTF-16 surrogates,
// whose handling (pairs, lone halves) it leaves to encoding/json.
func scanString(b []byte, i int) (next int, esc, sep, ok bool) {
	for i < len(b) {
		if i+8 <= len(b) {
			// Eight bytes at a time up to the first that is not plain.
			m := notPlain(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		}
		c := b[i]
		if plainStringByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, esc, sep, true
		case c < 0x20:
			return i, esc, sep, false
		case c != '\\':
			// Multi-byte UTF-8: encoding/json copies it as it is, but
			// parseFast promises valid UTF-8 to Decode.
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, esc, sep, false
			}
			i += size
			continue
		}
		esc = true
		if i+1 >= len(b) {
			return i, esc, sep, false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok || utf16.IsSurrogate(r) {
				return i, esc, sep, false
			}
			sep = sep || r == keySep
			i += 6
		default:
			return i, esc, sep, false
		}
	}
	return i, esc, sep, false // unterminated
}

// writeUnescaped writes the contents of a JSON string that scanString
// accepted, unescaped, to sb. Like encoding/json it copies the bytes between
// escapes as they are.
func writeUnescaped(sb *strings.Builder, s []byte) {
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			sb.Write(s)
			return
		}
		sb.Write(s[:i])
		e := s[i+1]
		switch e {
		case 'b':
			e = '\b'
		case 'f':
			e = '\f'
		case 'n':
			e = '\n'
		case 'r':
			e = '\r'
		case 't':
			e = '\t'
		case 'u':
			r, _ := hex4(s, i+2)
			sb.WriteRune(r)
			s = s[i+6:]
			continue
		}
		sb.WriteByte(e) // '"', '\\', '/' and the letters above
		s = s[i+2:]
	}
}

// identifiers unescapes the identifier fields of b into one string (one
// allocation) and returns them by field number.
func (p *fastValue) identifiers(b []byte) (ids [nIdentFields]string) {
	n := 0
	for _, s := range p.spans[:nIdentFields] {
		n += s.end - s.start // unescaping only shortens
	}
	var sb strings.Builder
	sb.Grow(n)
	var ends [nIdentFields]int
	for f, s := range p.spans[:nIdentFields] {
		if p.escaped&(1<<f) == 0 {
			sb.Write(b[s.start:s.end])
		} else {
			writeUnescaped(&sb, b[s.start:s.end])
		}
		ends[f] = sb.Len()
	}
	all, start := sb.String(), 0
	for f, end := range ends {
		ids[f] = all[start:end]
		start = end
	}
	return ids
}

// field returns the contents of string field f, unescaped, where parseFast
// found them in b. It is for op and time, which decodeFast reads without
// making strings of them; they come with escapes only from an unusual encoder
// (AppendValue has no reason to), so the copies in that case do not matter.
func (p *fastValue) field(b []byte, f int) []byte {
	s := b[p.spans[f].start:p.spans[f].end]
	if p.escaped&(1<<f) != 0 {
		var sb strings.Builder
		writeUnescaped(&sb, s)
		s = []byte(sb.String())
	}
	return s
}

// wire returns the wireEvent that encoding/json decodes b to, for a b that
// parseFast accepted into p. Decode does not need it; the tests compare it
// with encoding/json's.
func (p *fastValue) wire(b []byte) wireEvent {
	ids := p.identifiers(b)
	return wireEvent{
		Env: ids[fEnv], Segment: ids[fSegment], Generation: p.generation,
		ContextKind: ids[fContextKind], ContextKey: ids[fContextKey],
		Op:  string(p.field(b, fOp)),
		Run: ids[fRun], Seq: p.seq, Source: ids[fSource],
		Time: string(p.field(b, fTime)),
	}
}

// decodeFast finishes Decode for a value that parseFast accepted into p: it
// does what Decode does with a wireEvent, with the same results and errors,
// but without string copies of op and time and with the checks that
// parseFast already made (UTF-8) or that are cheap on its result (the
// separator) left out of the common case.
func (p *fastValue) decodeFast(b, key []byte) (Event, error) {
	opBytes := p.field(b, fOp)
	var op Op
	switch string(opBytes) {
	case "add":
		op = OpAdd
	case "remove":
		op = OpRemove
	default:
		return Event{}, opError(string(opBytes))
	}
	timeBytes := p.field(b, fTime)
	t, ok := parseUTCTimestamp(timeBytes)
	if !ok {
		var err error
		if t, err = parseTime(string(timeBytes)); err != nil {
			return Event{}, err
		}
	}
	ids := p.identifiers(b)
	ev := Event{
		Env: ids[fEnv], Segment: ids[fSegment], Generation: p.generation,
		ContextKind: ids[fContextKind], ContextKey: ids[fContextKey], Op: op,
		Run: ids[fRun], Seq: p.seq, Source: ids[fSource], Time: t,
	}
	// Validate's rules, knowing that the strings are valid UTF-8 and where
	// the separator is. On any doubt Validate itself names the field.
	valid := p.sep&(1<<fEnv|1<<fSegment|1<<fContextKind) == 0 &&
		ev.Generation >= 1 && ev.Seq != 0 && !ev.Time.IsZero()
	for _, s := range ids {
		valid = valid && uint(len(s)-1) < MaxKeyBytes
	}
	if !valid {
		if err := ev.Validate(); err != nil {
			return Event{}, &DecodeError{Reason: "invalid_field", Err: err}
		}
	}
	if !ev.keyEquals(key) {
		return Event{}, keyMismatchError(key)
	}
	return ev, nil
}

// parseUTCTimestamp parses the timestamps that AppendValue writes, RFC 3339
// in UTC with "Z" and up to nine fraction digits, and returns what
// time.Parse(time.RFC3339Nano, ...) would return for them. It reports false
// for anything else, including dates that do not exist, so that time.Parse
// decides. It computes the instant directly: time.Parse spends most of its
// time normalising the fields in time.Date.
func parseUTCTimestamp(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.999999999]Z
	if len(b) < len("2006-01-02T15:04:05Z") || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	century, ok1 := twoDigits(b[0], b[1])
	yy, ok2 := twoDigits(b[2], b[3])
	month, ok3 := twoDigits(b[5], b[6])
	day, ok4 := twoDigits(b[8], b[9])
	hour, ok5 := twoDigits(b[11], b[12])
	minute, ok6 := twoDigits(b[14], b[15])
	sec, ok7 := twoDigits(b[17], b[18])
	year := century*100 + yy
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	var nsec int
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		// '.' and one to nine digits. time.Parse takes more and
		// truncates; that is not what AppendValue writes.
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		var ok bool
		if nsec, ok = digits(frac[1:]); !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	unix := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	// time.Parse returns time.Date(..., time.UTC): no monotonic reading and
	// the UTC location, which Time stores as nil; Unix(...).UTC() is the same.
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// twoDigits parses the decimal digits c0 c1.
func twoDigits(c0, c1 byte) (int, bool) {
	d0, d1 := c0-'0', c1-'0' // a non-digit wraps to > 9
	return int(d0)*10 + int(d1), d0 <= 9 && d1 <= 9
}

// digits parses b, which is short, as a decimal number of only digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in month of year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch returns the number of days from 1970-01-01 to the date, for
// years 0 to 9999 (H. Hinnant's days_from_civil, with year+400 keeping the
// divisions on non-negative numbers).
func daysSinceEpoch(year, month, day int) int64 {
	y := year + 400 // one era later: the same calendar, 146097 days on
	if month <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (month + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe) - 719468 - 146097
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

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
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
