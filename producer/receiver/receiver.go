package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/schema"
)

// Paths the receiver serves (http.ServeMux patterns).
const (
	PathSegmentTargets = "POST /api/v2/segment-targets/{integrationKey}"
	PathAmplitudeHook  = "POST /api/v2/amplitude-cohort-webhooks/{environment}"
)

// Source is the source every pushed event names.
const Source = "push"

// Catalog is what the receiver reads of the control plane: the
// destinations (environments) and who owns a token. catalogstore.Store
// implements it.
type Catalog interface {
	Version(ctx context.Context) (uint64, error)
	Destinations(ctx context.Context) ([]catalog.Destination, error)
	// List returns the stored mappings: a push mapping naming an
	// integration and cohort claims their pushes (catalog.Mapping.PushTarget).
	List(ctx context.Context) ([]catalog.Mapping, error)
	TokenOwner(ctx context.Context, token string) (string, error)
}

// Streams opens a publishing stream per batch; *publish.Publisher
// implements it.
type Streams interface {
	Stream(ctx context.Context, origin publish.Origin) (*publish.Stream, error)
}

// Receiver answers partner pushes: it parses, authorises, numbers the
// changes from the segment's shared sequence allocator and publishes them,
// answering 204 once Kafka acknowledged them. See the package doc.
type Receiver struct {
	cfg     Config
	parsers *Parsers
	cat     Catalog
	seq     snapshot.SeqAllocator
	streams Streams
	dedup   redis.UniversalClient // control Redis for webhook message ids; nil: no de-duplication
	prefix  string
	slots   chan struct{}

	history    History  // nil: accepted batches are not recorded
	barriers   Barriers // nil: push runs take no barrier
	onRun      func(ctx context.Context, m catalog.Mapping, rec runstore.Record)
	topic      string
	histSlots  chan struct{}
	histWG     sync.WaitGroup
	histMu     sync.Mutex
	histClosed bool

	mu      sync.Mutex
	version uint64
	envs    map[string]catalog.Destination // by client_side_id and by name
	targets map[string]catalog.Mapping     // push mappings by "<integration>/<cohort> <destination>"
	loaded  bool

	stats Stats
}

// Stats counts what the receiver did since it started.
type Stats struct {
	Batches  atomic.Int64 // batches published and acknowledged
	Members  atomic.Int64 // changes published and acknowledged
	Excluded atomic.Int64 // members without a usable key
	Refused  atomic.Int64 // requests answered 4xx or 5xx
	byStatus [600]atomic.Int64
	Dups     atomic.Int64 // webhook deliveries answered 204 as already applied
	Stale    atomic.Int64 // changes dropped: a batch computed later changed their key already
	// Recorded counts the accepted batches added to the run history,
	// HistoryFailures those that could not be (logged).
	Recorded, HistoryFailures atomic.Int64
}

// Deps are a Receiver's collaborators. Control is the control Redis,
// where webhook message ids are remembered under Prefix; nil disables the
// de-duplication.
type Deps struct {
	Parsers *Parsers
	Catalog Catalog
	Seq     snapshot.SeqAllocator
	Streams Streams
	Control redis.UniversalClient
	Prefix  string
	// History, unless nil, records every accepted batch as a run (trigger
	// "push") with its exclusions, after the 204; Topic is the topic its
	// runs name (Streams' topic).
	History History
	Topic   string
	// Barriers, unless nil, let the history tell when a push run is
	// applied; without them push runs stay "published".
	Barriers Barriers
	// OnRun, unless nil, is called after the 204 with each accepted batch a
	// push mapping owns, as its run (for the mapping's notifications).
	OnRun func(ctx context.Context, m catalog.Mapping, rec runstore.Record)
}

// New returns a Receiver; it fails with *setting.Error values for an
// invalid cfg.
func New(cfg Config, d Deps) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Parsers == nil || d.Catalog == nil || d.Seq == nil || d.Streams == nil {
		return nil, errors.New("receiver.New: Parsers, Catalog, Seq and Streams are required")
	}
	cfg = cfg.withDefaults()
	return &Receiver{
		cfg: cfg, parsers: d.Parsers, cat: d.Catalog, seq: d.Seq, streams: d.Streams,
		dedup: d.Control, prefix: d.Prefix, slots: make(chan struct{}, cfg.MaxInFlight),
		history: d.History, topic: d.Topic, histSlots: make(chan struct{}, historySlots), barriers: d.Barriers, onRun: d.OnRun,
	}, nil
}

// Refusals returns the number of refused requests by HTTP status.
func (s *Stats) Refusals() map[int]int64 {
	out := map[int]int64{}
	for code := range s.byStatus {
		if n := s.byStatus[code].Load(); n > 0 {
			out[code] = n
		}
	}
	return out
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() *Stats { return &r.stats }

// Register adds the receiver's routes to mux.
func (r *Receiver) Register(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle(PathSegmentTargets, http.HandlerFunc(r.serveSegmentTargets))
	mux.Handle(PathAmplitudeHook, http.HandlerFunc(r.serveAmplitudeHook))
}

// Handler is a mux with the receiver's routes.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	r.Register(mux)
	return mux
}

func (r *Receiver) serveSegmentTargets(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("integrationKey")
	p, ok := r.parsers.byKey[key]
	if !ok {
		r.refuse(w, http.StatusNotFound, "unknown_integration", fmt.Sprintf("unknown integration %q (known: %s)", key, strings.Join(r.parsers.Integrations(), ", ")), "integrationKey")
		return
	}
	r.serve(w, req, p.env.String(), func(body []byte) (*Batch, error) {
		doc, err := decode(body)
		if err != nil {
			return nil, err
		}
		return p.parse(doc)
	})
}

func (r *Receiver) serveAmplitudeHook(w http.ResponseWriter, req *http.Request) {
	env := req.PathValue("environment")
	r.serve(w, req, "environment", func(body []byte) (*Batch, error) { return ParseAmplitudeWebhook(env, body) })
}

// serve runs one request: the checks that need no body, the body within
// its bound, the parse, the environment and token, then the publish.
func (r *Receiver) serve(w http.ResponseWriter, req *http.Request, envField string, parse func([]byte) (*Batch, error)) {
	start := time.Now()
	if !jsonContent(req.Header.Get("Content-Type")) {
		r.refuse(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json", "Content-Type")
		return
	}
	token := bearer(req.Header.Get("Authorization"))
	if token == "" {
		r.refuse(w, http.StatusUnauthorized, "unauthorized", "missing Authorization token", "Authorization")
		return
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		r.tooLarge(w)
		return
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	default:
		r.busy(w, fmt.Sprintf("%d requests in flight; retry later", r.cfg.MaxInFlight))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.tooLarge(w)
			return
		}
		r.refuse(w, http.StatusBadRequest, "invalid_request", "read body: "+err.Error(), "body")
		return
	}
	b, err := parse(body)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			r.refuse(w, http.StatusBadRequest, "invalid_request", fe.Error(), fe.Field)
			return
		}
		r.refuse(w, http.StatusBadRequest, "invalid_request", err.Error(), "body")
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), r.cfg.Timeout)
	defer cancel()
	owner, err := r.cat.TokenOwner(ctx, token)
	if err != nil {
		r.failed(ctx, w, "check the token", err)
		return
	}
	if owner == "" {
		r.refuse(w, http.StatusUnauthorized, "unauthorized", "the token is not valid for any destination", "Authorization")
		return
	}
	dest, target, ok, err := r.destination(ctx, b.Env, b.Integration, b.CohortID)
	if err != nil {
		r.failed(ctx, w, "read the destinations", err)
		return
	}
	if !ok {
		r.refuse(w, http.StatusBadRequest, "unknown_environment", fmt.Sprintf("no destination has client_side_id or name %q", b.Env), envField)
		return
	}
	if owner != dest.Name {
		r.refuse(w, http.StatusForbidden, "forbidden", fmt.Sprintf("the token is not valid for environment %q", b.Env), "Authorization")
		return
	}
	seg := segmentOf{segment: b.Segment(), generation: 1, contextKind: b.ContextKind}
	if target != nil {
		if !target.Enabled {
			r.refuse(w, http.StatusConflict, "mapping_paused", fmt.Sprintf("mapping %q, which receives integration %q cohort %q, is paused", target.Name, b.Integration, b.CohortID), "cohortId")
			return
		}
		seg = segmentOf{segment: target.Segment, generation: target.Generation, contextKind: target.ContextKind}
	}
	run := producer.NewRunID(start)
	a, err := r.apply(ctx, dest, b, seg, run)
	if err != nil {
		r.failed(ctx, w, "publish "+b.Segment(), err)
		return
	}
	done := time.Now()
	w.WriteHeader(http.StatusNoContent)
	if r.history != nil {
		mapping := ""
		if target != nil {
			mapping = target.Name
		}
		rec := pushRecord(run, mapping, dest.Name, seg, dest.Environment, b, a, start, done)
		rec.Summary.Topic, rec.Topic = r.topic, r.topic
		r.record(ctx, rec, b.Exclusions, a.gapsKnown,
			func() { _ = http.NewResponseController(w).Flush() }) // a client gone is the client's loss
		if target != nil && r.onRun != nil {
			r.onRun(ctx, *target, rec)
		}
	}
}

// apply publishes b to dest's environment as run and returns once Kafka
// acknowledged every event; b keeps the changes it published.
func (r *Receiver) apply(ctx context.Context, dest catalog.Destination, b *Batch, seg segmentOf, run string) (applied, error) {
	a := applied{keys: b.Members()}
	if r.barriers != nil && r.history != nil {
		// Before anything is published: a set-aside of this batch's
		// events moves the count after this read (see runwatch).
		if n, err := r.barriers.Gaps(ctx, dest.Name); err == nil {
			a.gaps, a.gapsKnown = n, true
		} else {
			r.cfg.Logger.WarnContext(ctx, "a push run will not be known applied", "destination", dest.Name, "error", err)
		}
	}
	r.recordExclusions(ctx, b)
	if b.Members() == 0 {
		return a, nil
	}
	var seen string
	if b.MessageID != "" && r.dedup != nil {
		seen = r.prefix + "{push}:message:" + digestHex(b.Integration+"\x00"+dest.Name+"\x00"+b.MessageID)
		n, err := r.dedup.Exists(ctx, seen).Result()
		if err != nil {
			return a, fmt.Errorf("look up message_id: %w", err)
		}
		if n > 0 {
			r.stats.Dups.Add(1)
			a.redelivered = true
			return a, nil
		}
	}
	id := snapshot.SegmentID{Env: dest.Environment, Segment: seg.segment, Generation: seg.generation, ContextKind: seg.contextKind}
	if !b.Time.IsZero() && r.dedup != nil {
		dropped, err := r.dropStale(ctx, id, b)
		if err != nil {
			return a, err
		}
		r.stats.Stale.Add(int64(dropped))
		a.stale = dropped
		if b.Members() == 0 {
			return a, r.remember(ctx, seen)
		}
	}
	n := uint64(b.Members())
	rng, err := r.seq.Reserve(ctx, id, 1, n)
	if err != nil {
		return a, err
	}
	stream, err := r.streams.Stream(ctx, publish.Origin{Segment: id, Run: run, Source: Source})
	if err != nil {
		return a, err
	}
	if err := send(ctx, stream, b, rng.First); err != nil {
		return a, err
	}
	if err := stream.Wait(ctx); err != nil {
		return a, err
	}
	r.stats.Batches.Add(1)
	r.stats.Members.Add(int64(n))
	a.first, a.last = rng.First, rng.First+n-1
	return a, r.remember(ctx, seen)
}

// remember records an applied delivery's message id (seen, "" for none),
// only once acknowledged: a delivery that failed is applied by its retry.
func (r *Receiver) remember(ctx context.Context, seen string) error {
	if seen == "" {
		return nil
	}
	if err := r.dedup.Set(ctx, seen, "1", r.cfg.DedupTTL).Err(); err != nil {
		r.cfg.Logger.WarnContext(ctx, "remember an applied webhook message_id; a redelivery would apply it again", "error", err)
	}
	return nil
}

// chunk is the most changes per Stream.Send, so that a 10,000-member batch
// is written by several of the stream's in-flight writes at once.
const chunk = 2500

// send hands b's changes to stream, numbered from first: adds, then
// removes.
func send(ctx context.Context, stream *publish.Stream, b *Batch, first uint64) error {
	buf := make([]snapshot.Change, 0, min(chunk, b.Members()))
	seq := first
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := stream.Send(ctx, buf)
		buf = buf[:0]
		return err
	}
	for _, part := range []struct {
		keys []string
		op   schema.Op
	}{{b.Adds, schema.OpAdd}, {b.Removes, schema.OpRemove}} {
		for _, k := range part.keys {
			buf = append(buf, snapshot.Change{Op: part.op, Key: []byte(k), Seq: seq})
			seq++
			if len(buf) == chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// destination finds the destination whose client_side_id, or else name,
// is env, re-reading the catalog when its version moved.
// segmentOf is the segment a batch is written to: "<integration>-<cohort>"
// (generation 1, the body's context kind), or its push mapping's.
type segmentOf struct {
	segment     string
	generation  int
	contextKind string
}

// destination returns the destination named env (by client-side ID, else
// by name) and the push mapping, if any, claiming integration and cohort
// there; both are read again when the catalog's version moved.
func (r *Receiver) destination(ctx context.Context, env, integration, cohort string) (catalog.Destination, *catalog.Mapping, bool, error) {
	v, err := r.cat.Version(ctx)
	if err != nil {
		return catalog.Destination{}, nil, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.loaded || v != r.version {
		ds, err := r.cat.Destinations(ctx)
		if err != nil {
			return catalog.Destination{}, nil, false, err
		}
		ms, err := r.cat.List(ctx)
		if err != nil {
			return catalog.Destination{}, nil, false, err
		}
		envs := make(map[string]catalog.Destination, 2*len(ds))
		for _, d := range ds {
			envs[d.Name] = d
		}
		// A client-side ID wins over a name spelled the same.
		for _, d := range ds {
			if d.ClientSideID != "" {
				envs[d.ClientSideID] = d
			}
		}
		targets := map[string]catalog.Mapping{}
		for _, m := range ms {
			if in, co, ok := m.PushTarget(); ok {
				for _, dn := range m.Destinations {
					targets[in+"/"+co+" "+dn] = m
				}
			}
		}
		r.envs, r.targets, r.version, r.loaded = envs, targets, v, true
	}
	d, ok := r.envs[env]
	if !ok {
		return d, nil, false, nil
	}
	if m, claimed := r.targets[integration+"/"+cohort+" "+d.Name]; claimed {
		return d, &m, true, nil
	}
	return d, nil, true, nil
}

func (r *Receiver) recordExclusions(ctx context.Context, b *Batch) {
	if len(b.Exclusions) == 0 {
		return
	}
	r.stats.Excluded.Add(int64(len(b.Exclusions)))
	byReason := map[string]int{}
	for _, e := range b.Exclusions {
		byReason[e.Reason]++
	}
	r.cfg.Logger.InfoContext(ctx, "push members excluded", "integration", b.Integration, "segment", b.Segment(),
		"excluded", len(b.Exclusions), "by_reason", byReason, "first", firstExclusions(b.Exclusions, 5))
}

func firstExclusions(es []source.Exclusion, n int) []source.Exclusion { return es[:min(n, len(es))] }

// errorBody is the JSON of every refusal.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (r *Receiver) refuse(w http.ResponseWriter, status int, code, msg, field string) {
	r.stats.Refused.Add(1)
	if status > 0 && status < len(r.stats.byStatus) {
		r.stats.byStatus[status].Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code, Message: msg, Field: field}) // the client went away: nothing to do
}

func (r *Receiver) busy(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
	r.refuse(w, http.StatusTooManyRequests, "rate_limited", msg, "")
}

func (r *Receiver) tooLarge(w http.ResponseWriter) {
	r.refuse(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", r.cfg.MaxBodyBytes), "body")
}

// failed answers an error of the receiver's own dependencies: transient
// ones (Kafka, Redis, a cancelled request) 429 so the partner retries,
// permanent ones 500.
func (r *Receiver) failed(ctx context.Context, w http.ResponseWriter, what string, err error) {
	r.cfg.Logger.WarnContext(ctx, "push not applied", "op", what, "error", err)
	if retry.IsPermanent(err) {
		r.refuse(w, http.StatusInternalServerError, "internal", what+": failed", "")
		return
	}
	r.busy(w, what+": temporarily unavailable; retry later")
}

// jsonContent accepts application/json and any +json type, with
// parameters (charset).
func jsonContent(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// bearer is the token of an Authorization header: LaunchDarkly's partners
// send the token alone; "Bearer <token>" is accepted too.
func bearer(h string) string {
	h = strings.TrimSpace(h)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	return h
}

func digestHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
