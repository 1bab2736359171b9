package publish_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/publish/publishtest"
	"github.com/cohortsync/cohortsync/schema"
)

// TestPublisherStreams publishes two origins' changes through one
// Publisher, as a sync recovering an interrupted run does, and reads them
// back: every event names its origin and keeps its op and sequence number.
func TestPublisherStreams(t *testing.T) {
	cfg, kf := publishtest.Config(t)
	cfg.TopicPartitions = 3
	ctx := testenv.Context(t, 60*time.Second)
	if err := publish.EnsureTopics(ctx, cfg, kf); err != nil {
		t.Fatal(err)
	}
	p, err := publish.New(cfg, kf)
	if err != nil {
		t.Fatal(err)
	}
	seg := snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}
	origins := []publish.Origin{{Segment: seg, Run: "r1", Source: "csv"}, {Segment: seg, Run: "r2", Source: "push"}}
	want := map[string]string{} // key -> run/op/seq
	for i, o := range origins {
		st, err := p.Stream(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		batch := []snapshot.Change{
			{Op: schema.OpAdd, Key: []byte(o.Run + "-a"), Seq: uint64(10*i + 1)},
			{Op: schema.OpRemove, Key: []byte(o.Run + "-b"), Seq: uint64(10*i + 2)},
		}
		for _, c := range batch {
			want[string(c.Key)] = fmt.Sprintf("%s/%s/%v/%d", o.Run, o.Source, c.Op, c.Seq)
		}
		if err := st.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := st.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if st.Acked() != 2 {
			t.Fatalf("stream %s acked %d, want 2", o.Run, st.Acked())
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got := map[string]string{}
	for _, m := range testenv.ReadTopic(t, kf.Brokers(), cfg.Topic, cfg.TopicPartitions) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Env != seg.Env || ev.Segment != seg.Segment {
			t.Fatalf("event %+v of another segment", ev)
		}
		got[ev.ContextKey] = fmt.Sprintf("%s/%s/%v/%d", ev.Run, ev.Source, ev.Op, ev.Seq)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	kf := kafkaxtest.Factory(t, "127.0.0.1:9")
	bad := publish.DefaultConfig()
	bad.Topic = ""
	if _, err := publish.New(bad, kf); err == nil {
		t.Fatal("New accepted a config without a topic")
	}
	if _, err := publish.New(publish.DefaultConfig(), nil); err == nil {
		t.Fatal("New accepted a nil client factory")
	}
}
