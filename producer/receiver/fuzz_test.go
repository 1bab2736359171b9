package receiver

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/schema"
)

// checkBatch holds whatever the body: a parse either fails with a
// FieldError or yields a batch whose size is bounded by the body's (no
// member from nothing) and whose keys and values events can carry.
func checkBatch(t *testing.T, body []byte, b *Batch, err error) {
	t.Helper()
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a *FieldError", err)
		}
		return
	}
	if n := b.Members() + len(b.Exclusions); n > len(body) {
		t.Fatalf("%d members and exclusions from %d bytes", n, len(body))
	}
	seen := map[string]bool{}
	for _, k := range append(append([]string(nil), b.Adds...), b.Removes...) {
		if err := schema.CheckIdentifier(k); err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		if seen[k] {
			t.Fatalf("key %q twice in one batch", k)
		}
		seen[k] = true
	}
	if b.Members() > 0 && schema.CheckIdentifier(b.Segment()) != nil {
		t.Fatalf("segment %q", b.Segment())
	}
	for _, e := range b.Exclusions {
		if !utf8.ValidString(e.Value) || len(e.Value) > cohortcsv.MaxValueBytes+len("…") || e.Row < 1 {
			t.Fatalf("exclusion %+v", e)
		}
	}
}

func seeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	more, _ := filepath.Glob("testdata/webhook-*.json")
	for _, p := range append(files, more...) {
		body, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(``))
	f.Add([]byte(`[[[[[[[[]]]]]]]]`))
	f.Add([]byte("{\"environmentId\": \"\xff\"}"))
}

// FuzzParse runs every declared parser on each input.
func FuzzParse(f *testing.F) {
	seeds(f)
	ps := builtin(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, k := range ps.Integrations() {
			b, err := ps.Parse(k, body)
			checkBatch(t, body, b, err)
		}
	})
}

func FuzzAmplitudeWebhook(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := ParseAmplitudeWebhook("env", body)
		checkBatch(t, body, b, err)
	})
}

// fuzzIntegration fuzzes one partner's parser, seeded with its own
// request bodies first.
func fuzzIntegration(f *testing.F, integration string) {
	own, _ := filepath.Glob(filepath.Join("testdata", "requests", integration+"*.json"))
	if len(own) == 0 {
		f.Fatalf("no request body of %s in testdata/requests", integration)
	}
	for _, p := range own {
		body, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	seeds(f)
	ps := builtin(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := ps.Parse(integration, body)
		checkBatch(t, body, b, err)
	})
}

func FuzzAmplitude(f *testing.F)   { fuzzIntegration(f, "amplitude") }
func FuzzSegment(f *testing.F)     { fuzzIntegration(f, "segment") }
func FuzzCensus(f *testing.F)      { fuzzIntegration(f, "census") }
func FuzzRudderStack(f *testing.F) { fuzzIntegration(f, "rudderstack") }
func FuzzHeap(f *testing.F)        { fuzzIntegration(f, "heap") }
func FuzzHightouch(f *testing.F)   { fuzzIntegration(f, "hightouch") }
func FuzzFulcrum(f *testing.F)     { fuzzIntegration(f, "fulcrum") }
func FuzzSumatra(f *testing.F)     { fuzzIntegration(f, "sumatra") }
func FuzzTealium(f *testing.F)     { fuzzIntegration(f, "tealium") }
func FuzzZeotap(f *testing.F)      { fuzzIntegration(f, "zeotap") }
