package amplitudetest

import (
	"bufio"
	"compress/gzip"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// User is one row of an export.
type User struct {
	AmplitudeID int64
	UserID      string // "" for an anonymous user
	Props       map[string]string
}

// Cohort is one cohort of the fake project.
type Cohort struct {
	ID           string
	Name         string
	LastComputed time.Time
	Archived     bool
	// Users are the members, unless Generate is set.
	Users []User
	// Generate, when > 0, makes the export Generate rows written as they
	// are sent: row i (from 0) has amplitude_id 1000000+i, user_id
	// "user-<i>" and every requested property P the value "P-<i>".
	Generate int
}

// Size is the number of members.
func (c Cohort) Size() int {
	if c.Generate > 0 {
		return c.Generate
	}
	return len(c.Users)
}

// Config is the fake project's data and behaviour.
type Config struct {
	// APIKey and SecretKey are the credentials accepted; other requests
	// get 401. Defaults "test-api-key" and "test-secret-key".
	APIKey, SecretKey string
	Cohorts           []Cohort
	// Pending is how many times the status of an export answers 202 "JOB
	// INPROGRESS" before 200 "JOB COMPLETED".
	Pending int
	// Inline serves the file from the file endpoint itself, as Amplitude
	// does for small cohorts; otherwise the file endpoint answers a 302 to
	// a presigned URL on this server.
	Inline bool
	// Gzip compresses the file.
	Gzip bool
	// URLTTL is how long a presigned URL is valid. Default one minute.
	URLTTL time.Duration
	// ExpiredURLs is how many of the first presigned URLs are expired when
	// given, as when a client is slow to follow the 302.
	ExpiredURLs int
	// URLUses is how many downloads a presigned URL allows; 0 for no limit.
	URLUses int
	// CutAfter, when > 0, stops the file after that many bytes (as sent,
	// compressed or not) and drops the connection mid-body.
	CutAfter int64
	// TruncateGzip ends a gzip file without its last block and trailer,
	// in a response that is otherwise complete.
	TruncateGzip bool
	// Latency delays every API answer (not the presigned downloads), so
	// that concurrent requests overlap.
	Latency time.Duration
	// MaxParallel, when > 0, answers 429 to an API request beyond that
	// many in progress for the project, as Amplitude does beyond 4.
	MaxParallel int
}

// Endpoint names a route, for faults and counts.
type Endpoint string

// Endpoints.
const (
	EndpointList     Endpoint = "list"     // GET /api/3/cohorts
	EndpointRequest  Endpoint = "request"  // GET /api/5/cohorts/request/{cohort_id}
	EndpointStatus   Endpoint = "status"   // GET /api/5/cohorts/request-status/{request_id}
	EndpointFile     Endpoint = "file"     // GET /api/5/cohorts/request/{request_id}/file
	EndpointDownload Endpoint = "download" // GET of a presigned URL
)

// Fault is an answer injected in place of the real one.
type Fault struct {
	Status     int
	RetryAfter string // the Retry-After header, when not ""
}

// Server is a running fake.
type Server struct {
	*httptest.Server
	cfg Config

	mu          sync.Mutex
	faults      map[Endpoint][]Fault
	counts      map[Endpoint]int
	queries     []url.Values // of the export requests
	requests    map[string]*export
	urls        map[string]*presigned
	next        int
	issued      int
	inflight    int
	maxInflight int
	authOnDown  int
}

type export struct {
	cohort   Cohort
	props    bool
	propKeys []string
	polls    int
}

type presigned struct {
	exp     *export
	expires time.Time
	uses    int
}

// New starts a fake with cfg, closed when t ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := Start(cfg)
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake with cfg outside a test (make demo); the caller
// closes it.
func Start(cfg Config) *Server {
	if cfg.APIKey == "" {
		cfg.APIKey = "test-api-key"
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = "test-secret-key"
	}
	if cfg.URLTTL <= 0 {
		cfg.URLTTL = time.Minute
	}
	s := &Server{cfg: cfg, faults: map[Endpoint][]Fault{}, counts: map[Endpoint]int{},
		requests: map[string]*export{}, urls: map[string]*presigned{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/3/cohorts", s.api(EndpointList, s.list))
	mux.HandleFunc("GET /api/5/cohorts/request/{id}", s.api(EndpointRequest, s.request))
	mux.HandleFunc("GET /api/5/cohorts/request-status/{id}", s.api(EndpointStatus, s.status))
	mux.HandleFunc("GET /api/5/cohorts/request/{id}/file", s.api(EndpointFile, s.file))
	mux.HandleFunc("GET /presigned/{token}", s.download)
	s.Server = httptest.NewServer(mux)
	return s
}

// APIKey is the API key the fake accepts.
func (s *Server) APIKey() string { return s.cfg.APIKey }

// SecretKey is the secret key the fake accepts.
func (s *Server) SecretKey() string { return s.cfg.SecretKey }

// Fail makes the next n requests to e answer f.
func (s *Server) Fail(e Endpoint, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[e] = append(s.faults[e], f)
	}
}

// Requests is how many requests e received, faults included.
func (s *Server) Requests(e Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[e]
}

// ExportQueries are the query strings of the export requests received.
func (s *Server) ExportQueries() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.queries...)
}

// MaxInFlight is the most API requests that were in progress at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

// DownloadsWithAuth counts presigned downloads that carried an
// Authorization header: the storage must never see the project's keys.
func (s *Server) DownloadsWithAuth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authOnDown
}

// ExpireURLs makes every presigned URL given so far expired.
func (s *Server) ExpireURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.urls {
		p.expires = time.Time{}
	}
}

// api wraps an API handler with the counts, faults, parallel limit,
// latency and Basic auth check every API route shares.
func (s *Server) api(e Endpoint, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts[e]++
		var fault *Fault
		if f := s.faults[e]; len(f) > 0 {
			fault, s.faults[e] = &f[0], f[1:]
		}
		s.inflight++
		s.maxInflight = max(s.maxInflight, s.inflight)
		over := s.cfg.MaxParallel > 0 && s.inflight > s.cfg.MaxParallel
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inflight--
			s.mu.Unlock()
		}()
		if s.cfg.Latency > 0 {
			select {
			case <-time.After(s.cfg.Latency):
			case <-r.Context().Done():
				return
			}
		}
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.APIKey)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.SecretKey)) != 1:
			jsonError(w, http.StatusUnauthorized, "Invalid API key or secret key")
		case over:
			w.Header().Set("Retry-After", "1")
			jsonError(w, http.StatusTooManyRequests, "too many concurrent requests")
		case fault != nil:
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			jsonError(w, fault.Status, http.StatusText(fault.Status))
		default:
			h(w, r)
		}
	}
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up: nothing to do
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, c := range s.cfg.Cohorts {
		out = append(out, map[string]any{
			"id": c.ID, "name": c.Name, "size": c.Size(), "archived": c.Archived, "appId": 123456,
			"lastComputed": c.LastComputed.UnixMilli(), "lastMod": c.LastComputed.UnixMilli(),
			"description": "", "owners": []string{"owner@example.com"}, "published": true,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"cohorts": out})
}

func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var c *Cohort
	for i := range s.cfg.Cohorts {
		if s.cfg.Cohorts[i].ID == id {
			c = &s.cfg.Cohorts[i]
		}
	}
	if c == nil {
		jsonError(w, http.StatusNotFound, "cohort "+id+" not found")
		return
	}
	q := r.URL.Query()
	exp := &export{cohort: *c, props: q.Get("props") == "1", propKeys: q["propKeys"]}
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.next++
	rid := fmt.Sprintf("req-%d", s.next)
	s.requests[rid] = exp
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]string{"request_id": rid, "cohort_id": id})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	rid := r.PathValue("id")
	s.mu.Lock()
	exp, ok := s.requests[rid]
	done := ok && exp.polls >= s.cfg.Pending
	if ok {
		exp.polls++
	}
	s.mu.Unlock()
	switch {
	case !ok:
		jsonError(w, http.StatusNotFound, "request "+rid+" not found")
	case done:
		writeJSON(w, http.StatusOK, map[string]string{"request_id": rid, "cohort_id": exp.cohort.ID, "async_status": "JOB COMPLETED"})
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"request_id": rid, "cohort_id": exp.cohort.ID, "async_status": "JOB INPROGRESS"})
	}
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	rid := r.PathValue("id")
	s.mu.Lock()
	exp, ok := s.requests[rid]
	done := ok && exp.polls > s.cfg.Pending
	var token string
	if done && !s.cfg.Inline {
		s.next++
		token = fmt.Sprintf("tok-%d", s.next)
		p := &presigned{exp: exp, expires: time.Now().Add(s.cfg.URLTTL)}
		if s.issued++; s.issued <= s.cfg.ExpiredURLs {
			p.expires = time.Time{}
		}
		s.urls[token] = p
	}
	s.mu.Unlock()
	switch {
	case !ok:
		jsonError(w, http.StatusNotFound, "request "+rid+" not found")
	case !done:
		jsonError(w, http.StatusBadRequest, "request "+rid+" is not completed")
	case s.cfg.Inline:
		s.send(w, r, exp)
	default:
		// An S3-style presigned URL: the signature is in the query.
		loc := fmt.Sprintf("%s/presigned/%s?X-Amz-Expires=%d&X-Amz-Signature=sig-%s", s.URL, token, int(s.cfg.URLTTL.Seconds()), token)
		http.Redirect(w, r, loc, http.StatusFound)
	}
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	s.mu.Lock()
	s.counts[EndpointDownload]++
	if r.Header.Get("Authorization") != "" {
		s.authOnDown++
	}
	var fault *Fault
	if f := s.faults[EndpointDownload]; len(f) > 0 {
		fault, s.faults[EndpointDownload] = &f[0], f[1:]
	}
	p, ok := s.urls[token]
	valid := ok && r.URL.Query().Get("X-Amz-Signature") == "sig-"+token && time.Now().Before(p.expires) &&
		(s.cfg.URLUses == 0 || p.uses < s.cfg.URLUses)
	if valid {
		p.uses++
	}
	s.mu.Unlock()
	switch {
	case fault != nil:
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		w.WriteHeader(fault.Status)
	case !valid:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
	default:
		s.send(w, r, p.exp)
	}
}

// send writes exp's file, streaming generated rows.
func (s *Server) send(w http.ResponseWriter, _ *http.Request, exp *export) {
	if s.cfg.Gzip {
		w.Header().Set("Content-Type", "application/gzip")
	} else {
		w.Header().Set("Content-Type", "text/csv")
	}
	w.WriteHeader(http.StatusOK)
	var out io.Writer = w
	cut := &cutWriter{w: w, left: s.cfg.CutAfter}
	if s.cfg.CutAfter > 0 {
		out = cut
	}
	var zw *gzip.Writer
	if s.cfg.Gzip {
		zw = gzip.NewWriter(out)
		out = zw
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	err := writeCSV(bw, exp)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && zw != nil {
		if s.cfg.TruncateGzip {
			err = zw.Flush() // no final block, no trailer
		} else {
			err = zw.Close()
		}
	}
	if cut.done || (err != nil && s.cfg.CutAfter > 0) {
		// Drop the connection: the client sees the body end early.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				_ = conn.Close()
			}
		}
	}
}

// WriteExport writes the file an export of c with the user properties
// propKeys would send, uncompressed: for comparing a pull with the same
// CSV read from a local file.
func WriteExport(w io.Writer, c Cohort, propKeys []string) error {
	return writeCSV(w, &export{cohort: c, props: len(propKeys) > 0, propKeys: propKeys})
}

func writeCSV(w io.Writer, exp *export) error {
	cw := csv.NewWriter(w)
	keys := []string{}
	if exp.props {
		keys = exp.propKeys
	}
	if err := cw.Write(append([]string{"amplitude_id", "user_id"}, keys...)); err != nil {
		return err
	}
	rec := make([]string, 2+len(keys))
	row := func(u User) error {
		rec[0], rec[1] = strconv.FormatInt(u.AmplitudeID, 10), u.UserID
		for i, k := range keys {
			rec[2+i] = u.Props[k]
		}
		return cw.Write(rec)
	}
	if n := exp.cohort.Generate; n > 0 {
		for i := range n {
			rec[0], rec[1] = strconv.Itoa(1000000+i), "user-"+strconv.Itoa(i)
			for j, k := range keys {
				rec[2+j] = k + "-" + strconv.Itoa(i)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	} else {
		for _, u := range exp.cohort.Users {
			if err := row(u); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// cutWriter passes on the first left bytes, then fails.
type cutWriter struct {
	w    io.Writer
	left int64
	done bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left, c.done = 0, true
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
		return n, io.ErrShortWrite
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}
