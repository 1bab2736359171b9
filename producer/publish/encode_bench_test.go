package publish

import (
	"context"
	"fmt"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/schema"
)

// BenchmarkEncode is the CPU of Send's encoding alone, per batch of
// SendBatch changes: the part of the publishing path that is the
// producer's own, measured without Kafka's noise.
func BenchmarkEncode(b *testing.B) {
	cfg := DefaultConfig()
	p, err := newStream(context.Background(), nil, &writes{}, cfg, testOrigin)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]snapshot.Change, cfg.SendBatch)
	for i := range batch {
		batch[i] = snapshot.Change{Op: schema.OpAdd, Key: []byte(fmt.Sprintf("user-%08d@example.com", i)), Seq: uint64(i + 1)}
	}
	b.ReportAllocs()
	for b.Loop() {
		enc, err := p.encode(batch)
		if err != nil {
			b.Fatal(err)
		}
		p.reuse(enc) // as a Send whose write succeeded
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
}
