package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// decodeReference is Decode as it was before parseFast: encoding/json only.
// It is the specification the fast decoder is held to.
func decodeReference(m *kafka.Message) (Event, error) {
	var ev Event
	v, ok := header(m.Headers, HeaderVersion)
	if !ok {
		return ev, &DecodeError{Reason: "missing_version", Err: fmt.Errorf("%w: no %s header", ErrUnknownVersion, HeaderVersion)}
	}
	if !bytes.Equal(v, versionBytes) {
		return ev, &DecodeError{Reason: "unknown_version", Err: fmt.Errorf("%w: %q (this build reads %d)", ErrUnknownVersion, truncate(v), Version)}
	}
	if !utf8.Valid(m.Value) {
		return ev, &DecodeError{Reason: "invalid_utf8", Err: errors.New("value is not valid UTF-8")}
	}
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return ev, &DecodeError{Reason: "invalid_json", Err: err}
	}
	if dec.More() {
		return ev, &DecodeError{Reason: "invalid_json", Err: errors.New("trailing data after the JSON object")}
	}
	op, err := ParseOp(w.Op)
	if err != nil {
		if w.Op == "" {
			err = errors.New("missing")
		}
		return ev, &DecodeError{Reason: "invalid_field", Err: &FieldError{Field: "op", Err: err}}
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		if w.Time == "" {
			err = errors.New("missing")
		}
		return ev, &DecodeError{Reason: "invalid_field", Err: &FieldError{Field: "time", Err: err}}
	}
	ev = Event{
		Env: w.Env, Segment: w.Segment, Generation: w.Generation,
		ContextKind: w.ContextKind, ContextKey: w.ContextKey, Op: op,
		Run: w.Run, Seq: w.Seq, Source: w.Source, Time: t,
	}
	if err := ev.Validate(); err != nil {
		return Event{}, &DecodeError{Reason: "invalid_field", Err: err}
	}
	if !bytes.Equal(m.Key, ev.AppendKey(nil)) {
		return Event{}, &DecodeError{Reason: "key_mismatch", Err: fmt.Errorf("message key %q does not identify the membership in the value", truncate(m.Key))}
	}
	return ev, nil
}

// sameEvent compares events field by field; time.Time is compared by instant,
// location name and offset, since time.Parse gives every call its own
// *Location for a numeric offset, and in UTC (as AppendValue writes it) by ==,
// which also compares how the Time stores it.
func sameEvent(a, b Event) bool {
	an, ao := a.Time.Zone()
	bn, bo := b.Time.Zone()
	if !a.Time.Equal(b.Time) || an != bn || ao != bo || a.Time.Location().String() != b.Time.Location().String() {
		return false
	}
	if b.Time.Location() == time.UTC && a.Time != b.Time {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

// checkDecodeMatchesReference fails t unless Decode and decodeReference agree
// on m exactly: both succeed with the same event, or both fail with the same
// reason and the same text. It also checks parseFast on its own: whatever it
// accepts, encoding/json decodes to the same wireEvent.
func checkDecodeMatchesReference(t *testing.T, m kafka.Message) {
	t.Helper()
	got, gotErr := Decode(&m)
	want, wantErr := decodeReference(&m)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("value %q key %q:\n Decode:    %v\n reference: %v", m.Value, m.Key, gotErr, wantErr)
	case gotErr != nil:
		var gde, wde *DecodeError
		if !errors.As(gotErr, &gde) || !errors.As(wantErr, &wde) {
			t.Fatalf("untyped error: %v / %v", gotErr, wantErr)
		}
		if gde.Reason != wde.Reason || gotErr.Error() != wantErr.Error() {
			t.Fatalf("value %q key %q:\n Decode:    %v\n reference: %v", m.Value, m.Key, gotErr, wantErr)
		}
	case !sameEvent(got, want):
		t.Fatalf("value %q:\n Decode:    %+v\n reference: %+v", m.Value, got, want)
	}

	var p fastValue
	if !parseFast(m.Value, &p) {
		return
	}
	if !utf8.Valid(m.Value) {
		t.Fatalf("value %q: parseFast accepted invalid UTF-8", m.Value)
	}
	fast := p.wire(m.Value)
	var ref wireEvent
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil || dec.More() {
		t.Fatalf("value %q: parseFast accepted what encoding/json rejects (err %v, more %v)", m.Value, err, dec.More())
	}
	if fast != ref {
		t.Fatalf("value %q:\n parseFast:     %+v\n encoding/json: %+v", m.Value, fast, ref)
	}
}

// keyFor returns the message key of the membership in value as encoding/json
// reads it, whether or not value is otherwise valid (unknown fields, trailing
// data, ...), so that fuzzed values get past the key check often enough to
// exercise the event fields.
func keyFor(value []byte) []byte {
	var w wireEvent
	_ = json.NewDecoder(bytes.NewReader(value)).Decode(&w)
	return (&Event{Env: w.Env, Segment: w.Segment, ContextKind: w.ContextKind, ContextKey: w.ContextKey}).AppendKey(nil)
}

// trickyValues are variants of the golden value that stress the corners where
// a hand-written decoder can part ways with encoding/json.
func trickyValues() []string {
	ev := sample()
	good := string(ev.AppendValue(nil))
	rm := sample()
	rm.Op, rm.ContextKey, rm.Seq = OpRemove, "bob \"the <builder>\"\n\u2028ü", 18446744073709551615
	escaped := string(rm.AppendValue(nil))
	// with replaces the first occurrence of old in the good value.
	with := func(old, repl string) string {
		if !strings.Contains(good, old) {
			panic(old)
		}
		return strings.Replace(good, old, repl, 1)
	}
	return []string{
		good,
		escaped,
		`{"env": "production", "segment": "amplitude-7khm89cz", "generation": 1, "context_kind": "user",
		  "context_key": "alice@example.com", "op": "add", "run": "20261125T200000Z-1a2b3c4d", "seq": 42,
		  "source": "csv", "time": "2026-11-25T20:00:00.123456789Z"}`,
		" \t\r\n" + good + " \t\r\n",
		`{"time":"2026-11-25T20:00:00Z","source":"csv","seq":42,"run":"r","op":"remove","context_key":"alice@example.com","context_kind":"user","generation":1,"segment":"amplitude-7khm89cz","env":"production"}`,
		`{}`, `{ }`, `null`, `[]`, `"x"`, `1`, ``, ` `, `{`, `}`, `{"env"`, `{"env":`, `{"env":"production"`, `{"env":"production",}`,
		`{"env`, `{"env":"ab\`, `{"env":"ab`, `{"env":"\u00`, `{"env":"\u00e`,
		// Trailing data: encoding/json's More ignores a closing bracket.
		good + `}`, good + `]`, good + ` ]`, good + `{}`, good + `x`, good + `,`, good + ` 1`, good + `null`,
		// Names: case folding (incl. the Kelvin sign and long s), escapes, unknown, duplicates.
		with(`"env"`, `"ENV"`), with(`"env"`, `"Env"`), with(`"context_key"`, `"context_\u212aey"`),
		with(`"context_key"`, "\"context_\u212aey\""), with(`"source"`, "\"\u017fource\""),
		with(`"env"`, `"\u0065nv"`), with(`"env"`, `"e\nv"`), with(`"env"`, `"env "`), with(`"env"`, `"extra"`),
		with(`"env"`, `""`), with(`{"env":"production",`, `{"env":"staging","env":"production",`),
		with(`{"env":"production",`, `{"env":"production","ENV":"staging",`),
		with(`{"env":"production",`, `{"extra":{"a":[1,2,{"b":null}]},"env":"production",`),
		// Null leaves a field as it is.
		with(`"env":"production"`, `"env":null`), with(`{"env":"production",`, `{"env":"production","env":null,`),
		with(`"generation":1`, `"generation":null`), with(`"seq":42`, `"seq":null`), with(`"op":"add"`, `"op":null`),
		// Wrong types.
		with(`"env":"production"`, `"env":1`), with(`"env":"production"`, `"env":true`),
		with(`"env":"production"`, `"env":{}`), with(`"env":"production"`, `"env":[]`),
		with(`"generation":1`, `"generation":"1"`), with(`"generation":1`, `"generation":true`),
		with(`"seq":42`, `"seq":[42]`),
		// Numbers.
		with(`"generation":1`, `"generation":1.0`), with(`"generation":1`, `"generation":1e3`),
		with(`"generation":1`, `"generation":1E3`), with(`"generation":1`, `"generation":-0`),
		with(`"generation":1`, `"generation":0`), with(`"generation":1`, `"generation":01`),
		with(`"generation":1`, `"generation":-1`), with(`"generation":1`, `"generation":+1`),
		with(`"generation":1`, `"generation":-`), with(`"generation":1`, `"generation":1.`),
		with(`"generation":1`, `"generation":9223372036854775807`),
		with(`"generation":1`, `"generation":9223372036854775808`),
		with(`"generation":1`, `"generation":-9223372036854775808`),
		with(`"generation":1`, `"generation":-9223372036854775809`),
		with(`"generation":1`, `"generation":99999999999999999999999`),
		with(`"seq":42`, `"seq":0`), with(`"seq":42`, `"seq":-0`), with(`"seq":42`, `"seq":-1`),
		with(`"seq":42`, `"seq":18446744073709551615`), with(`"seq":42`, `"seq":18446744073709551616`),
		with(`"seq":42`, `"seq":42.0`), with(`"seq":42`, `"seq":4.2e1`), with(`"seq":42`, `"seq":0x2a`),
		// Strings: escapes, surrogates, control characters.
		with(`alice@example.com`, `\"\\\/\b\f\n\r\t`), with(`alice@example.com`, `\u0041\u00e9\u20AC\u2028`),
		with(`alice@example.com`, `\ud83c\udf89`), with(`alice@example.com`, `\uD83C\uDF89`),
		with(`alice@example.com`, `\ud83c`), with(`alice@example.com`, `\ud83cx`), with(`alice@example.com`, `\udf89\ud83c`),
		with(`alice@example.com`, `\ud83c\u0041`), with(`alice@example.com`, `\ud83c\ud83c`),
		with(`alice@example.com`, `\u0000`), with(`alice@example.com`, `\u001f`), with(`alice@example.com`, `a\u001fb`),
		with(`amplitude-7khm89cz`, `a\u001fb`), with(`alice@example.com`, `\x41`), with(`alice@example.com`, `\u12`),
		with(`alice@example.com`, `\u12g4`), with(`alice@example.com`, `\U0041`), with(`alice@example.com`, `\'`),
		with(`alice@example.com`, "a\tb"), with(`alice@example.com`, "a\x00b"), with(`alice@example.com`, "a\x7fb"),
		with(`alice@example.com`, "ü日本🎉\u2028"), with(`alice@example.com`, `\`), with(`alice@example.com"`, `\"`),
		with(`alice@example.com`, strings.Repeat("k", MaxKeyBytes)), with(`alice@example.com`, strings.Repeat("k", MaxKeyBytes+1)),
		with(`alice@example.com`, strings.Repeat(`\u00e9`, 600)),
		// Fields the validation looks at.
		with(`"op":"add"`, `"op":"ADD"`), with(`"op":"add"`, `"op":""`), with(`"op":"add"`, `"op":"\u0061dd"`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T21:00:00.123456789+01:00`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T20:00:00.123456789z`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25 20:00:00Z`),
		with(`2026-11-25T20:00:00.123456789Z`, ``),
		with(`"env":"production"`, `"env":""`),
		// Validation: the first bad field in Validate's order is the one named.
		strings.Replace(with(`"env":"production"`, `"env":""`), `"generation":1`, `"generation":0`, 1),
		strings.Replace(with(`"seq":42`, `"seq":0`), `"generation":1`, `"generation":0`, 1),
		strings.Replace(with(`"source":"csv"`, `"source":""`), `"op":"add"`, `"op":"nop"`, 1),
		with(`"run":"20261125T200000Z-1a2b3c4d"`, `"run":""`), with(`"source":"csv"`, `"source":"\u001f"`),
		with(`"production"`, `"prod\u001f"`), with(`"user"`, `"\u001fuser"`), with(`"user"`, `"us\/er"`),
		with(`"user"`, `"\u0000"`), with(`"production"`, `"\t"`),
		with(`alice@example.com`, strings.Repeat(`\n`, 600)), with(`alice@example.com`, strings.Repeat(`\n`, 1025)),
		with(`alice@example.com`, strings.Repeat(`\u00e9`, 512)), with(`alice@example.com`, strings.Repeat("é", 512)+"k"),
		with(`"segment":"amplitude-7khm89cz",`, ``), with(`"generation":1,`, ``), with(`"seq":42,`, ``),
		// UTF-8: the fast parser checks it as it scans, Decode must still say invalid_utf8.
		with(`alice@example.com`, "alice\xff"), with(`alice@example.com`, "\xc0\x80"), with(`alice@example.com`, "\xed\xa0\x80"),
		with(`alice@example.com`, "\xf4\x90\x80\x80"), with(`alice@example.com`, "\xe6\x97"), with(`"env"`, "\"e\xffnv\""),
		with(`"env":`, "\"env\":\xff"), good + "\xff", with(`alice@example.com"`, "\xe6\x97\""),
		with(`alice@example.com`, "日本\U0001F389\u2028"),
		// Escapes in op and time, which the fast path leaves to encoding/json.
		with(`"op":"add"`, `"op":"ad\u0064"`), with(`"op":"add"`, `"op":"remov\u0065"`),
		with(`00:00.123456789Z`, `00:00\u002e5Z`), with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T20:00:00\/Z`),
		// Timestamps: the forms AppendValue writes and some it does not.
		with(`2026-11-25T20:00:00.123456789Z`, `2024-02-29T23:59:59.5Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-02-29T23:59:59Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-12-31T23:59:60Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T20:00:00.1234567891Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T20:00:00+00:00`),
		with(`2026-11-25T20:00:00.123456789Z`, `2026-11-25T20:00:00,5Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `0001-01-01T00:00:00Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `0000-01-01T00:00:00Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `9999-12-31T23:59:59.999999999Z`),
		with(`2026-11-25T20:00:00.123456789Z`, `1969-12-31T23:59:59.000000001Z`),
	}
}

func TestDecodeMatchesReference(t *testing.T) {
	for _, v := range trickyValues() {
		checkDecodeMatchesReference(t, kafka.Message{
			Key: keyFor([]byte(v)), Value: []byte(v),
			Headers: []kafka.Header{{Key: HeaderVersion, Value: []byte("1")}},
		})
	}
}

// TestParseFastTakesCommonShape keeps the values producers write on the fast
// path: falling back to encoding/json would be correct but slow.
func TestParseFastTakesCommonShape(t *testing.T) {
	ev := sample()
	good := string(ev.AppendValue(nil))
	escapedOpAndTime := strings.Replace(strings.Replace(good, `"add"`, `"\u0061dd"`, 1), `.123`, `\u002e123`, 1)
	for _, v := range append(trickyValues()[:5], escapedOpAndTime) {
		var p fastValue
		if !parseFast([]byte(v), &p) {
			t.Errorf("parseFast gave up on %s", v)
		}
	}
}

func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, v := range trickyValues() {
		f.Add([]byte(v), []byte(nil), true)
	}
	ev0 := sample()
	m := ev0.Message()
	f.Add(m.Value, m.Key, false)
	f.Add(m.Value, []byte("other"), false)
	f.Add(m.Value, m.Key[:len(m.Key)-1], false)
	f.Add([]byte("{\"env\":\"\xff\"}"), []byte(nil), true)
	f.Fuzz(func(t *testing.T, value, key []byte, deriveKey bool) {
		if deriveKey {
			key = keyFor(value)
		}
		checkDecodeMatchesReference(t, kafka.Message{
			Key: key, Value: value,
			Headers: []kafka.Header{{Key: HeaderVersion, Value: []byte("1")}},
		})
	})
}

func BenchmarkDecodeReference(b *testing.B) {
	ev0 := sample()
	m := ev0.Message()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeReference(&m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEscaped(b *testing.B) {
	ev0 := sample()
	ev0.ContextKey = "bob \"the <builder>\"\n\u2028ü"
	m := ev0.Message()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(&m); err != nil {
			b.Fatal(err)
		}
	}
}

// checkTimestampMatchesTimeParse fails t unless parseUTCTimestamp, where it
// accepts s, returns exactly what time.Parse does: the same instant, location
// and monotonic reading, so the same Time by ==.
func checkTimestampMatchesTimeParse(t *testing.T, s string) (accepted bool) {
	t.Helper()
	got, ok := parseUTCTimestamp([]byte(s))
	if !ok {
		return false
	}
	want, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%q: parseUTCTimestamp accepted what time.Parse rejects: %v", s, err)
	}
	if got != want {
		t.Fatalf("%q:\n parseUTCTimestamp: %#v (%v)\n time.Parse:        %#v (%v)", s, got, got, want, want)
	}
	return true
}

func TestParseUTCTimestampMatchesTimeParse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		accept bool // false: left to time.Parse
	}{
		{"nanoseconds", "2026-11-25T20:00:00.123456789Z", true},
		{"whole second", "2026-11-25T20:00:00Z", true},
		{"one fraction digit", "2026-11-25T20:00:00.5Z", true},
		{"zero fraction", "2026-11-25T20:00:00.000Z", true},
		{"epoch", "1970-01-01T00:00:00Z", true},
		{"before the epoch", "1969-12-31T23:59:59.999999999Z", true},
		{"year zero", "0000-01-01T00:00:00Z", true},
		{"year zero, March", "0000-03-01T00:00:00Z", true},
		{"zero time", "0001-01-01T00:00:00Z", true},
		{"last representable day", "9999-12-31T23:59:59.999999999Z", true},
		{"leap day", "2024-02-29T12:00:00Z", true},
		{"leap day of a 400th year", "2000-02-29T12:00:00Z", true},
		{"no leap day in a 100th year", "1900-02-29T12:00:00Z", false},
		{"no leap day", "2026-02-29T12:00:00Z", false},
		{"April 31", "2026-04-31T12:00:00Z", false},
		{"month 13", "2026-13-01T12:00:00Z", false},
		{"month 0", "2026-00-01T12:00:00Z", false},
		{"day 0", "2026-01-00T12:00:00Z", false},
		{"hour 24", "2026-01-01T24:00:00Z", false},
		{"minute 60", "2026-01-01T23:60:00Z", false},
		{"leap second", "2026-12-31T23:59:60Z", false},
		{"ten fraction digits", "2026-11-25T20:00:00.1234567891Z", false},
		{"comma fraction", "2026-11-25T20:00:00,5Z", false},
		{"empty fraction", "2026-11-25T20:00:00.Z", false},
		{"sign in fraction", "2026-11-25T20:00:00.-5Z", false},
		{"numeric offset", "2026-11-25T21:00:00+01:00", false},
		{"zero offset", "2026-11-25T20:00:00+00:00", false},
		{"lower-case z", "2026-11-25T20:00:00z", false},
		{"lower-case t", "2026-11-25t20:00:00Z", false},
		{"space for T", "2026-11-25 20:00:00Z", false},
		{"short year", "226-11-25T20:00:00Z", false},
		{"sign in year", "+026-11-25T20:00:00Z", false},
		{"sign in month", "2026-+1-25T20:00:00Z", false},
		{"empty", "", false},
		{"no zone", "2026-11-25T20:00:00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkTimestampMatchesTimeParse(t, tc.in); got != tc.accept {
				t.Errorf("parseUTCTimestamp(%q) accepted = %v, want %v", tc.in, got, tc.accept)
			}
		})
	}
}

// TestParseUTCTimestampEveryDay compares with time.Parse on every day of a
// few centuries, both sides of the epoch and around year 0, at a time of day
// with every field non-zero.
func TestParseUTCTimestampEveryDay(t *testing.T) {
	for _, r := range [][2]int{{0, 3}, {1599, 1603}, {1895, 2105}, {9997, 9999}} {
		for d := time.Date(r[0], 1, 1, 0, 0, 0, 0, time.UTC); d.Year() <= r[1]; d = d.AddDate(0, 0, 1) {
			s := d.Add(23*time.Hour + 59*time.Minute + 58*time.Second + 7).Format(time.RFC3339Nano)
			if !checkTimestampMatchesTimeParse(t, s) {
				t.Fatalf("parseUTCTimestamp gave up on %q", s)
			}
		}
	}
}

func FuzzParseUTCTimestampMatchesTimeParse(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T20:00:00.123456789Z", "2026-11-25T20:00:00Z", "2024-02-29T23:59:59.5Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-11-25T21:00:00+01:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkTimestampMatchesTimeParse(t, s)
	})
}

// BenchmarkParseTimestamp compares the timestamp fast path with time.Parse,
// which it replaces for the layout AppendValue writes.
func BenchmarkParseTimestamp(b *testing.B) {
	s := sample().Time.Format(time.RFC3339Nano)
	sb := []byte(s)
	b.Run("parseUTCTimestamp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := parseUTCTimestamp(sb); !ok {
				b.Fatal("not accepted")
			}
		}
	})
	b.Run("time.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNotPlainFindsFirstSpecialByte checks the word-at-a-time scan of
// scanString against plainStringByte: for every byte value at every position
// behind plain bytes, followed by bytes of every kind, and for random words.
func TestNotPlainFindsFirstSpecialByte(t *testing.T) {
	first := func(w [8]byte) int { // 8: none
		for i, c := range w {
			if !plainStringByte[c] {
				return i
			}
		}
		return 8
	}
	check := func(w [8]byte) {
		t.Helper()
		got := 8
		if m := notPlain(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if want := first(w); got != want {
			t.Fatalf("word % x: notPlain says byte %d, want %d", w, got, want)
		}
	}
	after := []byte{0x00, 0x01, 0x1f, 0x20, '"', '\\', 'a', 0x7f, 0x80, 0xc3, 0xff}
	for c := range 256 {
		for pos := range 8 {
			for _, a := range after {
				var w [8]byte
				for i := range w {
					switch {
					case i < pos:
						w[i] = 'x' + byte(i)
					case i == pos:
						w[i] = byte(c)
					default:
						w[i] = a
					}
				}
				check(w)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := []byte{0x00, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xff}
	for range 200000 {
		var w [8]byte
		for i := range w {
			if rng.IntN(4) == 0 {
				w[i] = pick[rng.IntN(len(pick))]
			} else {
				w[i] = byte(rng.IntN(256))
			}
		}
		check(w)
	}
}

// BenchmarkDecodeShapes measures Decode on the value shapes that take
// different paths: the one AppendValue writes, names in another order with
// whitespace (no name prediction), a numeric time offset (time.Parse), and an
// escaped op (encoding/json).
func BenchmarkDecodeShapes(b *testing.B) {
	ev := sample()
	m := ev.Message()
	good := string(m.Value)
	for _, tc := range []struct{ name, value string }{
		{"canonical", good},
		{"reordered with spaces", `{ "time": "2026-11-25T20:00:00.123456789Z", "source": "csv", "seq": 42,
			"run": "20261125T200000Z-1a2b3c4d", "op": "add", "context_key": "alice@example.com",
			"context_kind": "user", "generation": 1, "segment": "amplitude-7khm89cz", "env": "production" }`},
		{"time offset", strings.Replace(good, "20:00:00.123456789Z", "21:00:00.123456789+01:00", 1)},
		{"escaped op", strings.Replace(good, `"op":"add"`, `"op":"\u0061dd"`, 1)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			msg := kafka.Message{Key: m.Key, Value: []byte(tc.value), Headers: m.Headers}
			if _, err := Decode(&msg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(&msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
