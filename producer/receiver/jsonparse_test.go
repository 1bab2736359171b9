package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdDecode is what parseJSON must agree with: encoding/json with
// UseNumber, one value, nothing after it.
func stdDecode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(data, " \t\r\n"))) {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

func agree(t *testing.T, data []byte) {
	t.Helper()
	if !utf8.Valid(data) {
		return // decode refuses it before parsing
	}
	got, err := parseJSON(data)
	want, stdErr := stdDecode(data)
	if err != nil && strings.Contains(err.Error(), "nesting deeper") {
		return // encoding/json allows 10000 levels
	}
	if (err == nil) != (stdErr == nil) {
		t.Fatalf("%q: parseJSON error %v, encoding/json error %v", data, err, stdErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: parseJSON %#v, encoding/json %#v", data, got, want)
	}
}

func TestParseJSONAgrees(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `-0.5e+3`, `1E9`, `123456789012345678901234567890`, `true`, `false`, `null`,
		` {"a" : [1, "x", {"b": null}], "c": true } `, `{"a":1,"a":2}`,
		`"\u00e9\n\t\"\\\/\b\f\r"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
		`"é😀"`, `{"k":"v"}{}`, `[1,]`, `{"a":1,}`, `{,}`, `[01]`, `-`, `1.`, `.5`, `1e`, `+1`, `"\x"`, `"\u12"`, `"\u12g4"`,
		"\"a\x01\"", `[1 2]`, `{"a" 1}`, `{1:2}`, `tru`, `nul`, `[`, `{`, `"abc`, ``, ` `, `[[[]]]`, `{"a":{"b":{"c":[]}}}`,
	} {
		agree(t, []byte(s))
	}
}

func TestParseJSONDepth(t *testing.T) {
	if _, err := parseJSON([]byte(strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth))); err != nil {
		t.Errorf("depth %d: %v", maxDepth, err)
	}
	for _, open := range []string{"[", `{"a":`} {
		shut := map[string]string{"[": "]", `{"a":`: "}"}[open]
		deep := strings.Repeat(open, maxDepth+1) + "1" + strings.Repeat(shut, maxDepth+1)
		if _, err := parseJSON([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
			t.Errorf("depth %d of %s: %v", maxDepth+1, open, err)
		}
	}
}

// FuzzParseJSON: parseJSON accepts what encoding/json accepts and
// decodes it to the same values.
func FuzzParseJSON(f *testing.F) {
	seeds(f)
	for _, s := range []string{`"\ud83d\ude00"`, `[1,-0.5e3,{"a":null}]`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, data) })
}
