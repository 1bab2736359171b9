package consumer

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// badMessages are one message per class of bad input, in topic order, each
// with the dead-letter reason it must get. wrongType names the context key
// whose include key the test turns into a string.
func badMessages() (msgs []kafka.Message, reasons []string, wrongType string) {
	good := ev("staging", "amplitude-7khm89cz", 1, "alice", schema.OpAdd, 1)
	add := func(m kafka.Message, reason string) {
		msgs = append(msgs, m)
		reasons = append(reasons, reason)
	}
	add(good.Message(), "")

	m := msg(ev("staging", "amplitude-7khm89cz", 1, "no-version", schema.OpAdd, 2))
	m.Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
	add(m, "missing_version")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, "version-2", schema.OpAdd, 3))
	m.Headers[0].Value = []byte("2")
	add(m, "unknown_version")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, "bad-utf8", schema.OpAdd, 4))
	m.Value = []byte(strings.Replace(string(m.Value), "bad-utf8", "bad-\xff\xfe", 1))
	add(m, "invalid_utf8")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, "not-json", schema.OpAdd, 5))
	m.Value = []byte(`{"env":"staging",`)
	// A dead letter replayed into the topic that fails again keeps one set
	// of dead-letter headers: the new ones.
	m.Headers = append(m.Headers, kafka.Header{Key: schema.HeaderDeadLetterReason, Value: []byte("old-reason")},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte("999")})
	add(m, "invalid_json")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, "no-key", schema.OpAdd, 6))
	m.Value = []byte(strings.Replace(string(m.Value), `"context_key":"no-key",`, "", 1))
	add(m, "invalid_field")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, strings.Repeat("k", schema.MaxKeyBytes+1), schema.OpAdd, 7))
	add(m, "invalid_field")

	m = msg(ev("staging", "amplitude-7khm89cz", 1, "mallory", schema.OpAdd, 8))
	other := ev("staging", "amplitude-7khm89cz", 1, "alice", schema.OpAdd, 8)
	m.Key = other.AppendKey(nil)
	add(m, "key_mismatch")

	wrongType = "wrong-type@example.com"
	add(msg(ev("staging", "amplitude-7khm89cz", 1, wrongType, schema.OpAdd, 9)), segmentstore.ReasonWrongType)

	add(msg(ev("staging", "amplitude-7khm89cz", 1, "bob", schema.OpAdd, 10)), "")
	return msgs, reasons, wrongType
}

func TestDeadLetters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 1)
		cfg := testConfig(t, ke)
		msgs, reasons, wrongType := badMessages()
		ctx := testenv.Context(t, 60*time.Second)
		// An include key of the wrong type: Redis refuses SADD to it.
		if err := rdb.Set(ctx, bigsegments.IncludeKey(cfg.RedisPrefix, wrongType), "not a set", 0).Err(); err != nil {
			t.Fatal(err)
		}
		ke.produce(t, msgs...)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)

		var wantDead int
		for _, r := range reasons {
			if r != "" {
				wantDead++
			}
		}
		dead := ke.readDLQ(t, wantDead)
		var b strings.Builder
		for i, m := range dead {
			fmt.Fprintf(&b, "--- dead letter %d\nkey: %q\n", i, abbreviate(m.Key))
			fmt.Fprintf(&b, "value: %q (%d bytes)\n", abbreviate(m.Value), len(m.Value))
			for _, h := range m.Headers {
				v := strings.ReplaceAll(string(h.Value), ke.topic, "<topic>")
				v = strings.ReplaceAll(v, cfg.RedisPrefix, "<prefix>")
				fmt.Fprintf(&b, "header %s: %q\n", h.Key, v)
			}
		}
		golden(t, "dead-letters.golden", b.String())

		// The good messages around the bad ones are applied.
		for _, key := range []string{"alice", "bob"} {
			inc, _, err := segmentstore.Membership(ctx, rdb, cfg.RedisPrefix, key)
			if err != nil || len(inc) != 1 || inc[0] != "amplitude-7khm89cz.g1" {
				t.Errorf("%s included in %q (%v), want the segment", key, inc, err)
			}
		}
		// The refused event left no trace (issue 11 item 2): the member
		// index does not list it while its include set cannot say so.
		if members := sortedMembers(t, rdb, cfg.RedisPrefix, "amplitude-7khm89cz.g1"); !slices.Equal(members, []string{"alice", "bob"}) {
			t.Errorf("member index %q, want alice and bob only", members)
		}
		if s := c.Stats(); s.Applied != 2 || s.DeadLettered != int64(wantDead) || s.Lag != 0 {
			t.Errorf("stats = %+v, want 2 applied, %d dead-lettered, no lag", s, wantDead)
		}
		// Each reason appears in the order the messages were produced.
		i := 0
		for _, r := range reasons {
			if r == "" {
				continue
			}
			if got := headerValue(dead[i], schema.HeaderDeadLetterReason); got != r {
				t.Errorf("dead letter %d reason %q, want %q", i, got, r)
			}
			i++
		}
	})
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func abbreviate(b []byte) string {
	if len(b) > 100 {
		return string(b[:100]) + "..."
	}
	return string(b)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testenv.Golden(t, *update, filepath.Join("testdata", name), []byte(got))
}

// fakeWriter records writes and fails them as scripted.
type fakeWriter struct {
	calls   [][]kafka.Message
	results []error
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.calls = append(w.calls, append([]kafka.Message(nil), msgs...))
	if len(w.results) == 0 {
		return nil
	}
	err := w.results[0]
	w.results = w.results[1:]
	return err
}

func TestWriteAttempt(t *testing.T) {
	msgs := []kafka.Message{{Key: []byte("a"), Value: []byte("va")}, {Key: []byte("b"), Value: []byte("vb")}, {Key: []byte("c"), Value: []byte("vc")}}
	for _, tc := range []struct {
		name          string
		err           error
		wantPending   []string // keys still pending
		wantTruncated []string // keys whose values were dropped
		wantPermanent bool
		wantErr       bool
	}{
		{name: "all written", err: nil},
		{name: "network error retries all", err: errors.New("connection reset"), wantPending: []string{"a", "b", "c"}, wantErr: true},
		{name: "temporary broker error retries all", err: kafka.LeaderNotAvailable, wantPending: []string{"a", "b", "c"}, wantErr: true},
		{name: "authorization failure is permanent", err: kafka.TopicAuthorizationFailed, wantPending: []string{"a", "b", "c"}, wantErr: true, wantPermanent: true},
		{name: "partial failure retries only the failed", err: kafka.WriteErrors{nil, kafka.NotEnoughReplicas, nil}, wantPending: []string{"b"}, wantErr: true},
		{name: "partial permanent failure", err: kafka.WriteErrors{nil, kafka.TopicAuthorizationFailed, nil}, wantErr: true, wantPermanent: true},
		{name: "too large for the broker drops the value", err: kafka.WriteErrors{kafka.MessageSizeTooLarge, nil, nil}, wantPending: []string{"a"}, wantTruncated: []string{"a"}, wantErr: true},
		{name: "too large for the writer drops every value", err: kafka.MessageTooLargeError{}, wantPending: []string{"a", "b", "c"}, wantTruncated: []string{"a", "b", "c"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &fakeWriter{results: []error{tc.err}}
			pending, err := writeAttempt(context.Background(), w, msgs)
			if (err != nil) != tc.wantErr || retry.IsPermanent(err) != tc.wantPermanent {
				t.Fatalf("err = %v (permanent %v), want error %v permanent %v", err, retry.IsPermanent(err), tc.wantErr, tc.wantPermanent)
			}
			if tc.wantPermanent {
				return
			}
			var keys, trunc []string
			for _, m := range pending {
				keys = append(keys, string(m.Key))
				if m.Value == nil && headerValue(m, HeaderTruncated) == "2" {
					trunc = append(trunc, string(m.Key))
				}
			}
			if strings.Join(keys, ",") != strings.Join(tc.wantPending, ",") || strings.Join(trunc, ",") != strings.Join(tc.wantTruncated, ",") {
				t.Errorf("pending %q truncated %q, want %q and %q", keys, trunc, tc.wantPending, tc.wantTruncated)
			}
		})
	}
}

func TestDeadLetterHeaders(t *testing.T) {
	orig := kafka.Message{
		Topic: "membership", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []kafka.Header{
			{Key: "traceparent", Value: []byte("tp")},
			{Key: schema.HeaderDeadLetterReason, Value: []byte("old")},
			{Key: HeaderSourceTopic, Value: []byte("older-topic")},
		},
	}
	long := errors.New(strings.Repeat("x", 2*maxErrorHeader))
	m := deadLetter(&orig, "invalid_json", long)
	var got []string
	for _, h := range m.Headers {
		v := string(h.Value)
		if h.Key == HeaderDeadLetterError {
			v = fmt.Sprintf("<%d bytes>", len(v))
		}
		got = append(got, h.Key+"="+v)
	}
	want := []string{
		"traceparent=tp",
		schema.HeaderDeadLetterReason + "=invalid_json",
		HeaderDeadLetterError + fmt.Sprintf("=<%d bytes>", maxErrorHeader),
		HeaderSourceTopic + "=membership",
		HeaderSourcePartition + "=3",
		HeaderSourceOffset + "=42",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("headers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if string(m.Key) != "k" || string(m.Value) != "v" {
		t.Errorf("key/value changed: %q %q", m.Key, m.Value)
	}
	if len(orig.Headers) != 3 || string(orig.Headers[1].Value) != "old" {
		t.Error("deadLetter modified the original message's headers")
	}
}

// msg is e.Message() for an rvalue event.
func msg(e schema.Event) kafka.Message { return e.Message() }

// TestDeadLettersAreLoggedAndCounted pins issue 11's silent dead letters:
// each dead letter is logged with its partition, offset and reason, and
// the batch report counts them by reason for the metrics.
func TestDeadLettersAreLoggedAndCounted(t *testing.T) {
	var logs bytes.Buffer
	rt, err := NewRouteTable(map[string]Route{"prod": {Client: testenv.Redis(t).Client, Prefix: testenv.Name(t)}}, RouteTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obs := &reports{}
	c, err := NewWithRoutes(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Observer: obs}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	var batch []item
	for i, m := range []kafka.Message{
		{Value: []byte("{not json")},
		func() kafka.Message { e := ev("ghost", "seg", 1, "gus", schema.OpAdd, 2); return e.Message() }(),
		func() kafka.Message { e := ev("prod", "seg", 1, "alice", schema.OpAdd, 3); return e.Message() }(),
	} {
		m.Topic, m.Partition, m.Offset = "membership", 1, int64(40+i)
		it := item{msg: m}
		it.ev, it.err = schema.Decode(&it.msg)
		batch = append(batch, it)
	}
	ctx := testenv.Context(t, 20*time.Second)
	if _, err := c.process(ctx, ctx, c.streams[0], batch, &fakeCommitter{}, &fakeWriter{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(logs.String(), `"msg":"message dead-lettered"`)
	for _, want := range []string{`"partition":1,"offset":40,"reason":"`, `"partition":1,"offset":41,"reason":"unknown_environment"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if lines != 2 {
		t.Errorf("%d dead-letter lines, want 2:\n%s", lines, logs.String())
	}
	if len(obs.got) != 1 || obs.got[0].DeadLettered[ReasonUnknownEnvironment] != 1 || len(obs.got[0].DeadLettered) != 2 {
		t.Fatalf("batch reports %+v, want one counting 2 reasons, unknown_environment once", obs.got)
	}
}

type reports struct{ got []BatchReport }

func (r *reports) BatchCommitted(b BatchReport) { r.got = append(r.got, b) }

// TestDeadLetterLogLimit: at most a burst of lines per window; the next
// line allowed says how many were left out.
func TestDeadLetterLogLimit(t *testing.T) {
	var l logLimit
	now := time.Unix(1_800_000_000, 0)
	for i := range deadLetterLogBurst {
		if ok, left := l.allow(now); !ok || left != 0 {
			t.Fatalf("line %d refused (%v, %d)", i, ok, left)
		}
	}
	for range 5 {
		if ok, _ := l.allow(now.Add(time.Second)); ok {
			t.Fatal("a line past the burst was allowed within the window")
		}
	}
	if ok, left := l.allow(now.Add(deadLetterLogWindow)); !ok || left != 5 {
		t.Fatalf("first line of the next window: %v, %d left out; want allowed, 5", ok, left)
	}
}

// TestForeignSequenceNumbers pins issue 11 item 7: after an event from
// another writer with a very high sequence number, the segment's
// last_seq, last_run and last_applied stopped updating (they only moved to
// a higher sequence number). Now an event above MaxSeq is refused to the
// dead-letter topic as seq_out_of_range and changes nothing; one at or below
// it is applied like any other (last_seq and last_run are the highest
// applied, a contract the producer's shared counter numbers on from), and
// last_applied keeps saying when the segment was last written.
func TestForeignSequenceNumbers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 1)
		cfg := testConfig(t, ke)
		const seg, ref = "amplitude-7khm89cz", "amplitude-7khm89cz.g1"
		ctx := testenv.Context(t, 60*time.Second)
		refused := ev("staging", seg, 1, "mallory", schema.OpAdd, 1<<60)
		refused.Run = "hand-made"
		high := ev("staging", seg, 1, "trent", schema.OpAdd, MaxSeq)
		high.Run = "other-writer"
		ke.produce(t, messages(ev("staging", seg, 1, "alice", schema.OpAdd, 101), refused, high)...)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)

		dead := ke.readDLQ(t, 1)
		if got := headerValue(dead[0], schema.HeaderDeadLetterReason); got != ReasonSeqOutOfRange {
			t.Errorf("dead letter reason %q, want %q", got, ReasonSeqOutOfRange)
		}
		if got := headerValue(dead[0], HeaderDeadLetterError); !strings.Contains(got, "1152921504606846976") {
			t.Errorf("dead letter error %q does not name the sequence number", got)
		}
		if inc, _, err := segmentstore.Membership(ctx, rdb, cfg.RedisPrefix, "mallory"); err != nil || len(inc) != 0 {
			t.Errorf("mallory included in %q (%v), want nothing: the event was refused", inc, err)
		}
		first, err := segmentstore.Info(ctx, rdb, cfg.RedisPrefix, ref)
		if err != nil || first.LastSeq != MaxSeq || first.LastRun != "other-writer" || first.Members != 2 {
			t.Fatalf("Info = %+v, %v; want 2 members, last_seq %d of run other-writer", first, err, uint64(MaxSeq))
		}

		// The producer's next run numbers below the other writer's event:
		// applied, and last_applied moves.
		time.Sleep(5 * time.Millisecond) // last_applied has millisecond resolution
		ke.produce(t, messages(ev("staging", seg, 1, "carol", schema.OpAdd, 201))...)
		c.waitCaughtUp(t)
		if inc, _, err := segmentstore.Membership(ctx, rdb, cfg.RedisPrefix, "carol"); err != nil || !slices.Equal(inc, []string{ref}) {
			t.Errorf("carol included in %q (%v), want %s", inc, err, ref)
		}
		info, err := segmentstore.Info(ctx, rdb, cfg.RedisPrefix, ref)
		if err != nil || info.LastSeq != MaxSeq || info.LastRun != "other-writer" || !info.LastApplied.After(first.LastApplied) || info.Members != 3 {
			t.Errorf("Info = %+v, %v; want 3 members, last_seq and last_run unchanged, last_applied after %v", info, err, first.LastApplied)
		}
	})
}
