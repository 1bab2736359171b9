package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// AddrSetting is the setting the listen address comes from; listen errors
// name its flag.
const AddrSetting = "http-addr"

// ShutdownTimeout bounds the graceful shutdown: in-flight requests (a
// scrape, a probe) get this long once the context ends, then connections
// are closed.
const ShutdownTimeout = time.Second

// ValidateAddr checks a host:port to listen on; the host may be empty (all
// interfaces) and the port 0 (any). "" is valid: no server.
func ValidateAddr(addr string) error {
	if addr == "" {
		return nil
	}
	const want = "host:port to listen on (host may be empty, port 0 picks one)"
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return setting.Invalid(AddrSetting, addr, want)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return setting.Invalid(AddrSetting, addr, want)
	}
	return nil
}

// CheckFunc reports a problem, or nil when all is well.
type CheckFunc func(ctx context.Context) error

type check struct {
	name string
	fn   CheckFunc
}

// Server serves registered handlers and the /healthz and /readyz probes on
// one address. Register everything before Run.
type Server struct {
	addr    string
	setting string // names the address in errors: AddrSetting unless Named
	log     *slog.Logger
	mux     *http.ServeMux

	mu        sync.Mutex
	health    []check
	ready     []check
	bound     net.Addr
	listening chan struct{} // closed once listening, or when Run failed to
	running   atomic.Bool   // Run was called: listening can be closed only once
}

// New returns a server for addr (host:port, see ValidateAddr) logging to
// log (nil: slog.Default()).
func New(addr string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{addr: addr, setting: AddrSetting, log: log, mux: http.NewServeMux(), listening: make(chan struct{})}
	s.mux.HandleFunc("GET /healthz", s.probe(func() []check { return s.health }))
	s.mux.HandleFunc("GET /readyz", s.probe(func() []check { return append(s.health[:len(s.health):len(s.health)], s.ready...) }))
	return s
}

// Named makes errors name setting (a flag without its dashes) as where the
// address came from, for a server on another address than AddrSetting's.
// Call it before Run.
func (s *Server) Named(setting string) *Server {
	s.setting = setting
	return s
}

// Handle serves h at pattern (http.ServeMux patterns).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Check adds a liveness check: /healthz (and /readyz) fail while fn does.
func (s *Server) Check(name string, fn CheckFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = append(s.health, check{name, fn})
}

// Ready adds a readiness check: /readyz fails while fn does (a part still
// starting), /healthz does not.
func (s *Server) Ready(name string, fn CheckFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = append(s.ready, check{name, fn})
}

// probe answers 200 "ok" when every check passes, else 503 with one line
// per failing check, "name: reason".
func (s *Server) probe(checks func() []check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		cs := checks()
		s.mu.Unlock()
		var failed []string
		for _, c := range cs {
			if err := c.fn(r.Context()); err != nil {
				failed = append(failed, c.name+": "+err.Error())
			}
		}
		if len(failed) > 0 {
			http.Error(w, strings.Join(failed, "\n"), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok") // a probe that went away needs no answer
	}
}

// Listening is closed once Run listens (Addr is then set), or has failed
// to.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the address listened on, once listening (port 0 resolved); ""
// before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound == nil {
		return ""
	}
	return s.bound.String()
}

// Run listens and serves until ctx ends, then shuts down within
// ShutdownTimeout and returns nil. A listen or serve failure is returned at
// once, naming --http-addr. A server runs once: a second call returns an
// error.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("httpserver: Run called twice")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		close(s.listening)
		return fmt.Errorf("--%s: %w", s.setting, err)
	}
	s.mu.Lock()
	s.bound = ln.Addr()
	s.mu.Unlock()
	close(s.listening)
	s.log.Info("serving http", "addr", ln.Addr().String())
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		// Requests keep their context through the graceful shutdown.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }() // owned here: Run waits for it below
	select {
	case err := <-errc:
		return fmt.Errorf("--%s: serve: %w", s.setting, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // the deadline passed: drop what is left
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("--%s: serve: %w", s.setting, err)
	}
	return nil
}
