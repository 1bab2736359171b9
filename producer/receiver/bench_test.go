package receiver

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

const benchBatch = 10_000

// benchBody is an Amplitude push (the most verbose shape: the cohort
// repeated per member) of benchBatch members, batch i: distinct keys per
// batch, so every request is real work.
func benchBody(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"environmentId": %q, "batch": [`, prodID)
	for m := range benchBatch {
		if m > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"userId": "user-%03d-%06d@example.com", "cohortId": "7khm89cz", "cohortName": "Power users", "cohortUrl": "https://analytics.amplitude.com/org/1/cohort/7khm89cz", "value": %t}`, i%1000, m, m%10 != 0)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// BenchmarkReceiver measures members per second end to end: HTTP request
// of a 10,000-member batch, parse, token and environment, sequence
// numbers, publish, Kafka acknowledgement, 204; with one partner
// connection and with four at once. Beside it, the reference: the same
// changes published straight through a publish.Stream.
//
//	go test -run '^$' -bench Receiver -benchtime 40x ./producer/receiver/
func BenchmarkReceiver(b *testing.B) {
	bodies := make([][]byte, 8)
	for i := range bodies {
		bodies[i] = benchBody(i)
	}
	b.Logf("body %d bytes, %d members", len(bodies[0]), benchBatch)
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			f := newFixture(b, Config{}, nil)
			tok := f.tokens["production"]
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			post := func(body []byte) {
				req, err := http.NewRequest(http.MethodPost, f.url+"/api/v2/segment-targets/amplitude", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", tok)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
			post(bodies[0]) // connect, warm the writer
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan int)
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						post(bodies[i%len(bodies)])
					}
				}()
			}
			for i := range b.N {
				next <- i
			}
			close(next)
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "members/s")
			if got := f.rcv.Stats().Members.Load(); got != int64((b.N+1)*benchBatch) {
				b.Fatalf("%d members acknowledged, want %d", got, (b.N+1)*benchBatch)
			}
		})
	}
	b.Run("reference=publish-only", func(b *testing.B) {
		f := newFixture(b, Config{}, nil)
		pub, err := publish.New(f.pcfg, f.kf)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		ctx := testenv.Context(b, 10*time.Minute)
		id := snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}
		changes := make([]snapshot.Change, benchBatch)
		for m := range changes {
			changes[m] = snapshot.Change{Op: schema.OpAdd, Key: []byte(strings.Repeat("x", 8) + fmt.Sprintf("-%06d@example.com", m))}
		}
		b.ResetTimer()
		var seq uint64
		for range b.N {
			st, err := pub.Stream(ctx, publish.Origin{Segment: id, Run: "bench", Source: Source})
			if err != nil {
				b.Fatal(err)
			}
			for start := 0; start < len(changes); start += chunk {
				part := changes[start:min(start+chunk, len(changes))]
				for i := range part {
					seq++
					part[i].Seq = seq
				}
				if err := st.Send(ctx, part); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "members/s")
	})
}

// TestParseMemoryBounded: parsing a batch allocates a bounded multiple of
// its body, so MaxBodyBytes × MaxInFlight bounds the receiver's memory.
func TestParseMemoryBounded(t *testing.T) {
	ps := builtin(t)
	body := benchBody(0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := ps.Parse("amplitude", body)
	runtime.ReadMemStats(&after)
	if err != nil || b.Members() != benchBatch {
		t.Fatalf("parse: %v, %d members", err, b.Members())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*uint64(len(body)) {
		t.Errorf("parsing %d bytes allocated %d (%.1f×), want at most 8×", len(body), alloc, float64(alloc)/float64(len(body)))
	} else {
		t.Logf("parsing %d bytes allocated %d (%.1f×)", len(body), alloc, float64(alloc)/float64(len(body)))
	}
}
