package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample() Event {
	return Event{
		Env: "production", Segment: "amplitude-7khm89cz", Generation: 1,
		ContextKind: "user", ContextKey: "alice@example.com", Op: OpAdd,
		Run: "20261125T200000Z-1a2b3c4d", Seq: 42, Source: "csv",
		Time: time.Date(2026, 11, 25, 20, 0, 0, 123456789, time.UTC),
	}
}

// TestGolden pins the wire format: message key, value and headers. A change
// here breaks every consumer in the field; bump Version instead.
func TestGolden(t *testing.T) {
	remove := sample()
	remove.Op = OpRemove
	remove.ContextKey = "bob \"the <builder>\"\n\u2028ü"
	remove.Seq = 18446744073709551615
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{"add", sample()},
		{"remove-escaped-key", remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.ev.Message()
			var got bytes.Buffer
			got.WriteString("key: ")
			got.WriteString(strings.ReplaceAll(string(m.Key), "\x1f", `\x1f`))
			got.WriteString("\nvalue: ")
			got.Write(m.Value)
			for _, h := range m.Headers {
				got.WriteString("\nheader " + h.Key + ": " + string(h.Value))
			}
			got.WriteString("\n")
			testenv.Golden(t, *update, filepath.Join("testdata", tc.name+".golden"), got.Bytes())
			back, err := Decode(&m)
			if err != nil {
				t.Fatalf("decode golden message: %v", err)
			}
			if back != tc.ev {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, tc.ev)
			}
		})
	}
}

// testKeys are context keys with every kind of character the value's
// encoding treats apart, U+2028 and U+2029 among runes of the same first
// byte (E2) and at the end of the key.
var testKeys = []string{"plain", `q"uote\back`, "ctl\x00\x01\x1f\x7f", "html<>&", "line\u2028sep\u2029",
	"ünïcødé 日本 🎉", "tab\tnl\nret\r", "\u2027\u2028\u202a€\u2029", "ends\u2028", "\u2029"}

// TestAppendValueMatchesEncodingJSON keeps the hand-written encoder byte-equal
// to encoding/json, so any JSON library decodes what we write the same way.
func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	for _, k := range testKeys {
		ev := sample()
		ev.ContextKey = k
		w := wireEvent{Env: ev.Env, Segment: ev.Segment, Generation: ev.Generation, ContextKind: ev.ContextKind,
			ContextKey: ev.ContextKey, Op: ev.Op.String(), Run: ev.Run, Seq: ev.Seq, Source: ev.Source,
			Time: ev.Time.Format(time.RFC3339Nano)}
		want, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.AppendValue(nil); !bytes.Equal(got, want) {
			t.Errorf("key %q:\n got %s\nwant %s", k, got, want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sample()
	goodMsg := good.Message()
	withValue := func(v string) kafka.Message {
		m := good.Message()
		m.Value = []byte(v)
		return m
	}
	withField := func(field string, value any) kafka.Message {
		var obj map[string]any
		if err := json.Unmarshal(goodMsg.Value, &obj); err != nil {
			t.Fatal(err)
		}
		if value == nil {
			delete(obj, field)
		} else {
			obj[field] = value
		}
		b, _ := json.Marshal(obj)
		m := good.Message()
		m.Value = b
		return m
	}
	long := strings.Repeat("k", MaxKeyBytes+1)
	for _, tc := range []struct {
		name       string
		msg        kafka.Message
		wantReason string
		wantText   string
	}{
		{"no version header", kafka.Message{Key: goodMsg.Key, Value: goodMsg.Value}, "missing_version", "no cohortsync-schema-version header"},
		{"future version", kafka.Message{Key: goodMsg.Key, Value: goodMsg.Value, Headers: []kafka.Header{{Key: HeaderVersion, Value: []byte("2")}}}, "unknown_version", `"2" (this build reads 1)`},
		{"garbage version", kafka.Message{Key: goodMsg.Key, Value: goodMsg.Value, Headers: []kafka.Header{{Key: HeaderVersion, Value: []byte("v1")}}}, "unknown_version", `"v1"`},
		{"empty value", withValue(""), "invalid_json", "EOF"},
		{"not json", withValue("add alice"), "invalid_json", "invalid character"},
		{"trailing data", withValue(string(goodMsg.Value) + "{}"), "invalid_json", "trailing data"},
		{"unknown field", withField("extra", "x"), "invalid_json", `unknown field "extra"`},
		{"invalid utf8", withValue("{\"env\":\"\xff\"}"), "invalid_utf8", "not valid UTF-8"},
		{"missing env", withField("env", nil), "invalid_field", "field env: empty"},
		{"missing context key", withField("context_key", nil), "invalid_field", "field context_key: empty"},
		{"over-long context key", withField("context_key", long), "invalid_field", "field context_key: longer than 1024 bytes"},
		{"separator in segment", withField("segment", "a\x1fb"), "invalid_field", "field segment: contains the unit separator"},
		{"generation zero", withField("generation", 0), "invalid_field", "field generation: 0 is not >= 1"},
		{"generation missing", withField("generation", nil), "invalid_field", "field generation: 0 is not >= 1"},
		{"generation not a number", withField("generation", "1"), "invalid_json", "cannot unmarshal string"},
		{"missing op", withField("op", nil), "invalid_field", "field op: missing"},
		{"bad op", withField("op", "toggle"), "invalid_field", `field op: unknown op "toggle"`},
		{"missing seq", withField("seq", nil), "invalid_field", "field seq: must be > 0"},
		{"negative seq", withField("seq", -1), "invalid_json", "cannot unmarshal number -1"},
		{"missing time", withField("time", nil), "invalid_field", "field time: missing"},
		{"bad time", withField("time", "yesterday"), "invalid_field", "field time: parsing time"},
		{"key does not match value", kafka.Message{Key: []byte("other"), Value: goodMsg.Value, Headers: goodMsg.Headers}, "key_mismatch", `message key "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(&tc.msg)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if de.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q (err: %v)", de.Reason, tc.wantReason, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
		})
	}
}

func TestUnknownVersionIsDetectable(t *testing.T) {
	ev0 := sample()
	m := ev0.Message()
	m.Headers[0].Value = []byte("9")
	if _, err := Decode(&m); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("got %v, want ErrUnknownVersion", err)
	}
}

func TestMessageKeyIdentifiesMembership(t *testing.T) {
	a, b := sample(), sample()
	b.Op, b.Seq, b.Run, b.Time = OpRemove, 99, "other-run", b.Time.Add(time.Hour)
	if !bytes.Equal(a.AppendKey(nil), b.AppendKey(nil)) {
		t.Error("events of one membership must share a message key (ordering and compaction depend on it)")
	}
	for name, mutate := range map[string]func(*Event){
		"env":          func(e *Event) { e.Env = "staging" },
		"segment":      func(e *Event) { e.Segment = "other" },
		"context kind": func(e *Event) { e.ContextKind = "org" },
		"context key":  func(e *Event) { e.ContextKey = "bob" },
	} {
		c := sample()
		mutate(&c)
		if bytes.Equal(a.AppendKey(nil), c.AppendKey(nil)) {
			t.Errorf("different %s must give a different message key", name)
		}
	}
}

func TestRef(t *testing.T) {
	if got := Ref("amplitude-7khm89cz", 1); got != "amplitude-7khm89cz.g1" {
		t.Fatalf("Ref = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	ev0 := sample()
	m := ev0.Message()
	f.Add(m.Key, m.Value, []byte("1"))
	f.Add([]byte("k"), []byte(`{"env":"e"}`), []byte("1"))
	f.Add([]byte{}, []byte{0xff, 0xfe}, []byte("2"))
	f.Fuzz(func(t *testing.T, key, value, version []byte) {
		msg := kafka.Message{Key: key, Value: value, Headers: []kafka.Header{{Key: HeaderVersion, Value: version}}}
		ev, err := Decode(&msg)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("Decode accepted an invalid event: %v", verr)
		}
		again := ev.Message()
		if !bytes.Equal(again.Key, key) {
			t.Fatalf("accepted key %q that re-encodes to %q", key, again.Key)
		}
	})
}

func BenchmarkAppendValue(b *testing.B) {
	ev := sample()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendValue(buf[:0])
	}
}

func BenchmarkDecode(b *testing.B) {
	ev0 := sample()
	m := ev0.Message()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(&m); err != nil {
			b.Fatal(err)
		}
	}
}
