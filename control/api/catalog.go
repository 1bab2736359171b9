package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
)

// Destinations and mappings are written in the mappings file's form and
// checked by the file's own decoder (catalog.Decode) within the whole
// stored catalog, the written entry last: the API accepts exactly what
// mappings apply of the stored catalog with that entry would, with the
// same messages (a mapping naming an unknown destination, a second
// mapping writing one segment, two destinations on one prefix). A
// password is refused there too (redis.password, or a URL carrying one):
// the API never holds a secret, the destination says where serve reads
// it.

// bodyFile is the name catalog.Decode gives the body in its errors.
const bodyFile = "body"

// entryObject reads body as one JSON object, its name set to the path's
// when it has none (pathName "" for a create).
func entryObject(body []byte, pathName string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, badRequest("", "want one JSON value, found more after it")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("", "want a JSON object")
	}
	if pathName != "" {
		switch n, given := obj["name"]; {
		case !given:
			obj["name"] = pathName
		case n != pathName:
			return nil, badRequest("name", "name %v: want the path's, %q (a rename is a create and a delete)", n, pathName)
		}
	}
	return obj, nil
}

// lineRefs are the decoder's references to lines of the file.
var lineRefs = regexp.MustCompile(` ?\((also )?(at )?line \d+\)| at line \d+`)

// keyPattern is the catalog's form of keys and context kinds.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// asObject is v (a file form) as the JSON object the decoder reads.
func asObject(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode a stored entry: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode a stored entry: %w", err)
	}
	return m, nil
}

// projectObject is p in the file's form.
func projectObject(p catalog.AmplitudeProject) map[string]any {
	m := map[string]any{"name": p.Name}
	if p.Region != "" {
		m["region"] = p.Region
	} else {
		m["base_url"] = p.BaseURL
	}
	for k, ref := range map[string]catalog.SecretRef{"api_key": p.APIKey, "secret_key": p.SecretKey} {
		if ref.Env != "" {
			m[k+"_env"] = ref.Env
		} else {
			m[k+"_file"] = ref.File
		}
	}
	return m
}

// storedFile is the stored catalog in the file's form, without the
// destination or mapping called except (the one a PUT replaces).
func (a *API) storedFile(ctx context.Context, exceptDest, exceptMapping string) (dests, maps, projects []map[string]any, err error) {
	ds, err := a.deps.Catalog.Destinations(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, d := range ds {
		if d.Name == exceptDest {
			continue
		}
		o, err := asObject(d.FileForm())
		if err != nil {
			return nil, nil, nil, err
		}
		dests = append(dests, o)
	}
	ms, err := a.deps.Catalog.List(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, m := range ms {
		if m.Name == exceptMapping {
			continue
		}
		o, err := asObject(m.FileForm())
		if err != nil {
			return nil, nil, nil, err
		}
		maps = append(maps, o)
	}
	ps, err := a.deps.Catalog.AmplitudeProjects(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, p := range ps {
		projects = append(projects, projectObject(p))
	}
	return dests, maps, projects, nil
}

// decodeEntries decodes a file of dests and maps (JSON objects in the
// file's form) and answers its problems as a 400 naming the first's field.
func decodeEntries(dests, maps []map[string]any, projects []map[string]any) (*catalog.Catalog, error) {
	file := map[string]any{"destinations": orEmpty(dests), "mappings": orEmpty(maps), "amplitude_projects": orEmpty(projects)}
	data, err := json.Marshal(file)
	if err != nil {
		return nil, badRequest("", "re-encode the body: %v", err)
	}
	c, err := catalog.Decode(bodyFile, data)
	if err == nil {
		return c, nil
	}
	problems := catalog.Errors(err)
	if len(problems) == 0 {
		return nil, badRequest("", "%v", err)
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = lineRefs.ReplaceAllString(p.Problem, "") // the body's lines are no place the client knows
		if p.Field != "" {
			msgs[i] = p.Field + ": " + p.Problem
		}
	}
	return nil, badRequest(problems[0].Field, "%s", strings.Join(msgs, "; "))
}

func orEmpty(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}

// destinationJSON is a destination as the API shows it.
type destinationJSON struct {
	catalog.FileDestination
	// KeyPrefix is the prefix its segments are written under.
	KeyPrefix string `json:"key_prefix"`
}

func destinationView(d catalog.Destination) destinationJSON {
	return destinationJSON{FileDestination: d.FileForm(), KeyPrefix: d.Prefix()}
}

func (a *API) listDestinations(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "cursor", "limit")
	cursor, limit := q.str("cursor"), q.limit()
	if err := q.err(); err != nil {
		return err
	}
	ds, err := a.deps.Catalog.Destinations(r.Context())
	if err != nil {
		return err
	}
	views := make([]destinationJSON, len(ds))
	for i, d := range ds {
		views[i] = destinationView(d)
	}
	p, err := pageOf(views, func(d destinationJSON) string { return d.Name }, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) getDestination(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deps.Catalog.Destination(r.Context(), r.PathValue("destination"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, destinationView(d))
	return nil
}

func (a *API) createDestination(w http.ResponseWriter, r *http.Request) error {
	return a.putDestination(w, r, "")
}

func (a *API) updateDestination(w http.ResponseWriter, r *http.Request) error {
	return a.putDestination(w, r, r.PathValue("destination"))
}

// entryKind is how putEntry reads, decodes and shows one kind of entry.
type entryKind struct {
	name string // destination, mapping
	// get fails with an error wrapping catalogstore.ErrNotFound for an
	// entry that is not stored.
	get func(ctx context.Context, name string) error
	// decode returns the catalog to apply: obj's entry alone, checked
	// within the stored catalog.
	decode func(ctx context.Context, obj map[string]any, name string) (*catalog.Catalog, error)
	show   func(ctx context.Context, name string) (any, error)
}

// putEntry creates (name "": 201, 409 if it exists) or replaces (404 if
// it does not) the entry of the body.
func (a *API) putEntry(w http.ResponseWriter, r *http.Request, name string, k entryKind) error {
	body, err := readBody(r, a.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	obj, err := entryObject(body, name)
	if err != nil {
		return err
	}
	ctx := r.Context()
	n, _ := obj["name"].(string)
	if n != "" {
		err := k.get(ctx, n)
		switch {
		case name == "" && err == nil:
			return conflict("name", fmt.Errorf("%s %q exists: PUT %ss/%s replaces it", k.name, n, k.name, n))
		case name != "" && err != nil, err != nil && !errors.Is(err, catalogstore.ErrNotFound):
			return err
		}
	}
	c, err := k.decode(ctx, obj, n)
	if err != nil {
		return err
	}
	if _, err := a.deps.Catalog.Apply(ctx, c); err != nil {
		return err
	}
	v, err := k.show(ctx, n)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if name == "" {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
	return nil
}

// putDestination creates (name "") or replaces destination name.
func (a *API) putDestination(w http.ResponseWriter, r *http.Request, name string) error {
	return a.putEntry(w, r, name, entryKind{name: "destination",
		get: func(ctx context.Context, n string) error { _, err := a.deps.Catalog.Destination(ctx, n); return err },
		decode: func(ctx context.Context, obj map[string]any, n string) (*catalog.Catalog, error) {
			dests, maps, projects, err := a.storedFile(ctx, name, "")
			if err != nil {
				return nil, err
			}
			c, err := decodeEntries(append(dests, obj), maps, projects)
			if err != nil {
				return nil, err
			}
			d, _ := c.Destination(n) // decoded: its name is valid, so n
			return &catalog.Catalog{Destinations: []catalog.Destination{d}}, nil
		},
		show: func(ctx context.Context, n string) (any, error) {
			d, err := a.deps.Catalog.Destination(ctx, n)
			return destinationView(d), err
		},
	})
}

func (a *API) deleteDestination(w http.ResponseWriter, r *http.Request) error {
	if err := a.deps.Catalog.DeleteDestination(r.Context(), r.PathValue("destination")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// destinationTest is the answer of POST /destinations/{destination}/test.
type destinationTest struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (a *API) testDestination(w http.ResponseWriter, r *http.Request) error {
	d, err := a.deps.Catalog.Destination(r.Context(), r.PathValue("destination"))
	if err != nil {
		return err
	}
	res := destinationTest{Status: "connected"}
	if err := a.deps.Test(r.Context(), d); err != nil {
		res = destinationTest{Status: "error", Error: err.Error()}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *API) listMappings(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "cursor", "limit")
	cursor, limit := q.str("cursor"), q.limit()
	if err := q.err(); err != nil {
		return err
	}
	ms, err := a.deps.Catalog.List(r.Context())
	if err != nil {
		return err
	}
	views := make([]catalog.FileMapping, len(ms))
	for i, m := range ms {
		views[i] = m.FileForm()
	}
	p, err := pageOf(views, func(m catalog.FileMapping) string { return m.Name }, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) getMapping(w http.ResponseWriter, r *http.Request) error {
	m, err := a.deps.Catalog.Get(r.Context(), r.PathValue("mapping"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m.FileForm())
	return nil
}

func (a *API) createMapping(w http.ResponseWriter, r *http.Request) error {
	return a.putMapping(w, r, "")
}

func (a *API) updateMapping(w http.ResponseWriter, r *http.Request) error {
	return a.putMapping(w, r, r.PathValue("mapping"))
}

// putMapping creates (name "") or replaces mapping name.
func (a *API) putMapping(w http.ResponseWriter, r *http.Request, name string) error {
	return a.putEntry(w, r, name, entryKind{name: "mapping",
		get: func(ctx context.Context, n string) error { _, err := a.deps.Catalog.Get(ctx, n); return err },
		decode: func(ctx context.Context, obj map[string]any, n string) (*catalog.Catalog, error) {
			dests, maps, projects, err := a.storedFile(ctx, "", name)
			if err != nil {
				return nil, err
			}
			c, err := decodeEntries(dests, append(maps, obj), projects)
			if err != nil {
				return nil, err
			}
			i, _ := slices.BinarySearchFunc(c.Mappings, n, func(m catalog.Mapping, n string) int { return strings.Compare(m.Name, n) })
			return &catalog.Catalog{Mappings: []catalog.Mapping{c.Mappings[i]}}, nil
		},
		show: func(ctx context.Context, n string) (any, error) {
			m, err := a.deps.Catalog.Get(ctx, n)
			return m.FileForm(), err
		},
	})
}

func (a *API) deleteMapping(w http.ResponseWriter, r *http.Request) error {
	if err := a.deps.Catalog.Delete(r.Context(), r.PathValue("mapping")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) pauseMapping(w http.ResponseWriter, r *http.Request) error {
	return a.setEnabled(w, r, false)
}

func (a *API) resumeMapping(w http.ResponseWriter, r *http.Request) error {
	return a.setEnabled(w, r, true)
}

func (a *API) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	name := r.PathValue("mapping")
	if _, err := a.deps.Catalog.SetEnabled(r.Context(), name, enabled); err != nil {
		return err
	}
	return a.getMapping(w, r)
}

// syncAccepted is the answer of POST /mappings/{mapping}/sync.
type syncAccepted struct {
	Mapping  string    `json:"mapping"`
	Trigger  string    `json:"trigger"`
	Accepted time.Time `json:"accepted"`
	Runs     string    `json:"runs"`
}

// syncMapping starts a run of the mapping, owned by the API (Close waits
// for it), and answers 202 unless it is refused within SyncGrace: not
// found, paused, a push source, or a run in progress on any replica. How
// the run ends is in the run history, as for a scheduled run.
func (a *API) syncMapping(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("mapping")
	if _, err := a.deps.Catalog.Get(r.Context(), name); err != nil {
		return err
	}
	accepted := a.deps.Now().UTC()
	errc := make(chan error, 1)
	if !a.background(r, func(ctx context.Context) { errc <- a.deps.Sync.SyncNow(ctx, name) }) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the server is shutting down"}
	}
	timer := time.NewTimer(a.cfg.SyncGrace)
	defer timer.Stop()
	select {
	case err := <-errc:
		if e := classify(err); err != nil && e.Status < 500 {
			return e // refused: nothing ran
		}
		// It ran already (a failure is the run's, recorded in the history).
	case <-timer.C:
	}
	writeJSON(w, http.StatusAccepted, syncAccepted{Mapping: name, Trigger: "manual", Accepted: accepted,
		Runs: Prefix + "/runs?mapping=" + url.QueryEscape(name) + "&trigger=manual"})
	return nil
}
