package schema

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestJSONSchemaDocumentsWireEvent keeps membership-v1.schema.json, which other
// languages rely on, in step with the Go encoder: same field set, all required,
// and its example is accepted by Decode.
func TestJSONSchemaDocumentsWireEvent(t *testing.T) {
	raw, err := os.ReadFile("membership-v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
		Examples   []json.RawMessage          `json:"examples"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var fields []string
	rt := reflect.TypeOf(wireEvent{})
	for i := range rt.NumField() {
		fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	var props []string
	for p := range doc.Properties {
		props = append(props, p)
	}
	req := append([]string(nil), doc.Required...)
	sort.Strings(fields)
	sort.Strings(props)
	sort.Strings(req)
	if !reflect.DeepEqual(fields, props) || !reflect.DeepEqual(fields, req) {
		t.Fatalf("schema out of date:\n wire fields %v\n properties  %v\n required    %v", fields, props, req)
	}
	if len(doc.Examples) == 0 {
		t.Fatal("schema has no example")
	}
	for _, ex := range doc.Examples {
		var w wireEvent
		if err := json.Unmarshal(ex, &w); err != nil {
			t.Fatal(err)
		}
		op, _ := ParseOp(w.Op)
		key := (&Event{Env: w.Env, Segment: w.Segment, ContextKind: w.ContextKind, ContextKey: w.ContextKey, Op: op}).AppendKey(nil)
		m := kafka.Message{Key: key, Value: ex, Headers: []kafka.Header{{Key: HeaderVersion, Value: []byte("1")}}}
		if _, err := Decode(&m); err != nil {
			t.Errorf("example rejected: %v", err)
		}
	}
}
