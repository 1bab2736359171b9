package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/schema"
)

// segmentJSON is a segment as the API shows it.
type segmentJSON struct {
	segments.Segment
	Ref    string `json:"ref"`
	Synced bool   `json:"synced"`
	Stale  bool   `json:"stale"`
}

func segmentView(s segments.Segment) segmentJSON {
	return segmentJSON{Segment: s, Ref: s.Ref(), Synced: s.Synced(), Stale: s.Stale()}
}

// segmentKey orders segments by key, destination and generation: names
// hold no byte below '-', so the separators sort first.
func segmentKey(s segmentJSON) string {
	return fmt.Sprintf("%s\x00%s\x00%010d", s.Key, s.Destination, s.Generation)
}

// segmentPage is a page of segments and the destinations that could not
// be read (their segments are missing from it).
type segmentPage struct {
	pageJSON[segmentJSON]
	Errors []string `json:"errors,omitempty"`
}

func (a *API) view() *segments.View {
	return &segments.View{Catalog: a.deps.Catalog, Connect: a.deps.Connect, Now: a.deps.Now}
}

func (a *API) listSegments(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "destination", "cursor", "limit")
	dest, cursor, limit := q.str("destination"), q.str("cursor"), q.limit()
	if err := q.err(); err != nil {
		return err
	}
	if dest != "" {
		if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
			return err
		}
	}
	segs, err := a.view().List(r.Context(), segments.Filter{Destination: dest})
	var problems []string
	if err != nil {
		if len(segs) == 0 && dest != "" {
			return err // the one destination asked for cannot be read
		}
		problems = strings.Split(err.Error(), "\n")
	}
	views := make([]segmentJSON, len(segs))
	for i, s := range segs {
		views[i] = segmentView(s)
	}
	slices.SortFunc(views, func(a, b segmentJSON) int { return strings.Compare(segmentKey(a), segmentKey(b)) })
	p, perr := pageOf(views, segmentKey, cursor, limit)
	if perr != nil {
		return perr
	}
	writeJSON(w, http.StatusOK, segmentPage{pageJSON: p, Errors: problems})
	return nil
}

// segmentDetail is a segment in one destination, every generation.
type segmentDetail struct {
	Key         string        `json:"key"`
	Destination string        `json:"destination"`
	Generations []segmentJSON `json:"generations"`
}

// segmentPath checks the path's destination and segment key.
func segmentPath(r *http.Request) (dest, key string, err error) {
	dest, key = r.PathValue("destination"), r.PathValue("segment")
	if err := schema.CheckIdentifier(key); err != nil {
		return "", "", badRequest("segment", "segment %q: want %s", key, schema.IdentifierForm)
	}
	return dest, key, nil
}

// show is the segment of the path in its destination, every generation.
func (a *API) show(r *http.Request) ([]segments.Segment, error) {
	dest, key, err := segmentPath(r)
	if err != nil {
		return nil, err
	}
	if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
		return nil, err
	}
	return a.view().Show(r.Context(), key, dest)
}

func (a *API) getSegment(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r).err(); err != nil {
		return err
	}
	segs, err := a.show(r)
	if err != nil {
		return err
	}
	out := segmentDetail{Key: segs[0].Key, Destination: segs[0].Destination, Generations: make([]segmentJSON, len(segs))}
	for i, s := range segs {
		out.Generations[i] = segmentView(s)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pick is the generation asked for (0: the current one: the owning
// mapping's, else the highest).
func pick(segs []segments.Segment, generation int) (segments.Segment, error) {
	var cur *segments.Segment
	for i, s := range segs {
		if generation != 0 && s.Generation == generation {
			return s, nil
		}
		if generation == 0 && s.Current && (cur == nil || s.Generation > cur.Generation) {
			cur = &segs[i]
		}
	}
	if cur == nil {
		return segments.Segment{}, notFound("segment %q has no generation %d in destination %q", segs[0].Key, generation, segs[0].Destination)
	}
	return *cur, nil
}

// generation is the path's segment, of generation gen (0: the current
// one), and the client of its destination's Redis.
func (a *API) generation(r *http.Request, gen int) (segments.Segment, redis.UniversalClient, error) {
	segs, err := a.show(r)
	if err != nil {
		return segments.Segment{}, nil, err
	}
	s, err := pick(segs, gen)
	if err != nil {
		return segments.Segment{}, nil, err
	}
	d, err := a.deps.Catalog.Destination(r.Context(), s.Destination)
	if err != nil {
		return segments.Segment{}, nil, err
	}
	c, err := a.deps.Connect(r.Context(), d)
	return s, c, err
}

// maxScans bounds the SSCAN calls of one page of members: a prefix
// matching few members in a large segment answers a short page and a
// cursor rather than scanning the whole set.
const maxScans = 32

// membersCursor is where a page of members starts: an SSCAN cursor and
// how many of that call's members the last page already gave.
type membersCursor struct {
	scan uint64
	skip int
}

func (c membersCursor) String() string { return fmt.Sprintf("%d.%d", c.scan, c.skip) }

func parseMembersCursor(s string) (membersCursor, error) {
	scan, skip, ok := strings.Cut(s, ".")
	a, err1 := strconv.ParseUint(scan, 10, 64)
	b, err2 := strconv.Atoi(skip)
	if !ok || err1 != nil || err2 != nil || b < 0 {
		return membersCursor{}, badRequest("cursor", "cursor %q: want the next_cursor of a previous page", s)
	}
	return membersCursor{a, b}, nil
}

// listMembers pages through a segment's member index with HSCAN or SSCAN
// (MATCH prefix*): a page may hold fewer than limit members before the
// last, and members added or removed meanwhile may be missed or repeated,
// as a scan guarantees no more.
func (a *API) listMembers(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "generation", "prefix", "cursor", "limit")
	gen, prefix, cursor, limit := q.intIn("generation", 1, 1<<30, 0), q.str("prefix"), q.str("cursor"), q.limit()
	if err := q.err(); err != nil {
		return err
	}
	at := membersCursor{}
	if cursor != "" {
		var err error
		if at, err = parseMembersCursor(cursor); err != nil {
			return err
		}
	}
	s, c, err := a.generation(r, gen)
	if err != nil {
		return err
	}
	key := bigsegments.MembersKey(s.Prefix, s.Ref())
	// The member index is a hash (key → the seq that let it in), or a set
	// for a segment written before since-tracking.
	typ, err := c.Type(r.Context(), key).Result()
	if err != nil {
		return err
	}
	match := segmentstore.GlobEscape(prefix) + "*"
	scan := func(cursor uint64) ([]string, uint64, error) {
		if typ != "hash" {
			return c.SScan(r.Context(), key, cursor, match, int64(limit)).Result()
		}
		kv, next, err := c.HScan(r.Context(), key, cursor, match, int64(limit)).Result()
		keys := make([]string, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			keys = append(keys, kv[i])
		}
		return keys, next, err
	}
	out := pageJSON[string]{Items: []string{}}
	for range maxScans {
		keys, next, err := scan(at.scan)
		if err != nil {
			return err
		}
		rest := keys[min(at.skip, len(keys)):]
		room := limit - len(out.Items)
		if len(rest) > room {
			out.Items = append(out.Items, rest[:room]...)
			out.NextCursor = membersCursor{at.scan, at.skip + room}.String()
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		out.Items = append(out.Items, rest...)
		if next == 0 {
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		at = membersCursor{scan: next}
		if len(out.Items) == limit {
			break
		}
	}
	out.NextCursor = at.String()
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) exportSegment(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "generation")
	gen := q.intIn("generation", 1, 1<<30, 0)
	if err := q.err(); err != nil {
		return err
	}
	s, c, err := a.generation(r, gen)
	if err != nil {
		return err
	}
	return streamCSV(w, fmt.Sprintf("%s-%s.csv", s.Ref(), s.Destination), func(out io.Writer) error {
		_, err := segments.Export(r.Context(), c, s.Prefix, s.Ref(), out, segments.ExportOptions{})
		return err
	})
}

// membersEdit is the body of POST .../members/add and .../remove.
type membersEdit struct {
	Keys        []string `json:"keys"`
	Generation  int      `json:"generation"`
	ContextKind string   `json:"context_kind"`
}

// MaxEditKeys bounds the keys of one edit.
const MaxEditKeys = 10000

// editResult is the answer of an edit.
type editResult struct {
	Segment     string           `json:"segment"`
	Destination string           `json:"destination"`
	Op          string           `json:"op"`
	Summary     producer.Summary `json:"summary"`
}

func (a *API) addMembers(w http.ResponseWriter, r *http.Request) error {
	return a.editMembers(w, r, "add", a.deps.Edit.Add)
}

func (a *API) removeMembers(w http.ResponseWriter, r *http.Request) error {
	return a.editMembers(w, r, "remove", a.deps.Edit.Remove)
}

type editFunc func(ctx context.Context, t segments.Target, keys []string) (producer.Summary, error)

func (a *API) editMembers(w http.ResponseWriter, r *http.Request, op string, edit editFunc) error {
	dest, key, err := segmentPath(r)
	if err != nil {
		return err
	}
	var in membersEdit
	if err := a.decode(r, &in); err != nil {
		return err
	}
	switch {
	case len(in.Keys) == 0:
		return badRequest("keys", "keys: want 1 to %d context keys", MaxEditKeys)
	case len(in.Keys) > MaxEditKeys:
		return badRequest("keys", "keys: %d context keys, want at most %d (split the edit)", len(in.Keys), MaxEditKeys)
	case in.Generation < 0:
		return badRequest("generation", "generation %d: want an integer >= 1", in.Generation)
	}
	if _, err := segments.CheckKeys(in.Keys); err != nil {
		return badRequest("keys", "%v", err)
	}
	if in.ContextKind != "" && (schema.CheckIdentifier(in.ContextKind) != nil || !keyPattern.MatchString(in.ContextKind) || in.ContextKind == "kind" || in.ContextKind == "multi") {
		return badRequest("context_kind", "context_kind %q: want letters, digits, '.', '_' or '-', not kind or multi", in.ContextKind)
	}
	if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
		return err
	}
	sum, err := edit(r.Context(), segments.Target{Segment: key, Destination: dest, Generation: in.Generation, ContextKind: in.ContextKind}, in.Keys)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, editResult{Segment: key, Destination: dest, Op: op, Summary: sum})
	return nil
}
