package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
// *Location for a numeric offset.
func sameEvent(a, b Event) bool {
	an, ao := a.Time.Zone()
	bn, bo := b.Time.Zone()
	if !a.Time.Equal(b.Time) || an != bn || ao != bo || a.Time.Location().String() != b.Time.Location().String() {
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

	if !utf8.Valid(m.Value) {
		return // parseFast's precondition
	}
	var fast wireEvent
	if !parseFast(m.Value, &fast) {
		if fast != (wireEvent{}) {
			t.Fatalf("value %q: parseFast gave up but wrote %+v", m.Value, fast)
		}
		return
	}
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
	for _, v := range trickyValues()[:5] {
		var w wireEvent
		if !parseFast([]byte(v), &w) {
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
