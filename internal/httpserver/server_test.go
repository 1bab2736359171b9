package httpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestValidateAddr(t *testing.T) {
	for _, tc := range []struct {
		name, addr, want string // want "" = valid
	}{
		{"empty is off", "", ""},
		{"any interface, fixed port", ":9090", ""},
		{"loopback, any port", "127.0.0.1:0", ""},
		{"ipv6", "[::1]:8080", ""},
		{"no port", "localhost", `--http-addr="localhost": want host:port to listen on (host may be empty, port 0 picks one)`},
		{"port not a number", "localhost:http", `--http-addr="localhost:http": want host:port to listen on (host may be empty, port 0 picks one)`},
		{"port too large", ":65536", `--http-addr=":65536": want host:port to listen on (host may be empty, port 0 picks one)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAddr(tc.addr)
			if got := testenv.ErrText(err); got != tc.want {
				t.Fatalf("%s = %q\nwant %q", `ValidateAddr(tc.addr)`, got, tc.want)
			}
		})
	}
}

// serve runs s until the test ends and returns its base URL.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancellation")
		}
	})
	<-s.Listening()
	if s.Addr() == "" {
		t.Fatal("not listening")
	}
	return "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestProbesAndHandlers(t *testing.T) {
	s := New("127.0.0.1:0", quiet())
	var lagErr, startErr atomic.Value
	lagErr.Store(errors.New(""))
	startErr.Store(errors.New(""))
	errOf := func(v *atomic.Value) CheckFunc {
		return func(context.Context) error {
			if err := v.Load().(error); err.Error() != "" {
				return err
			}
			return nil
		}
	}
	s.Check("consumer", errOf(&lagErr))
	s.Ready("consumer", errOf(&startErr))
	s.Handle("GET /hello", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }))
	base := serve(t, s)

	if code, body := get(t, base+"/hello"); code != 200 || body != "hi" {
		t.Errorf("/hello = %d %q", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz = %d %q, want 200 ok", code, body)
	}
	startErr.Store(errors.New("starting"))
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while starting = %d, want 200: readiness is not liveness", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "consumer: starting\n" {
		t.Errorf("/readyz while starting = %d %q, want 503", code, body)
	}
	startErr.Store(errors.New(""))
	lagErr.Store(errors.New("last successful lag check 1h0m0s ago"))
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+p); code != http.StatusServiceUnavailable || body != "consumer: last successful lag check 1h0m0s ago\n" {
			t.Errorf("%s when unhealthy = %d %q, want 503 with the reason", p, code, body)
		}
	}
	if code, _ := get(t, base+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}

func TestRunNamesTheFlagWhenListenFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(ln.Addr().String(), quiet())
	err = s.Run(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "--http-addr: ") {
		t.Fatalf("Run on a taken port = %v, want an error naming --http-addr", err)
	}
	select {
	case <-s.Listening():
	default:
		t.Error("Listening not closed after a failed listen")
	}
	named := New(ln.Addr().String(), quiet()).Named("receiver-addr")
	if err := named.Run(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "--receiver-addr: ") {
		t.Errorf("Run of a Named server on a taken port = %v, want an error naming --receiver-addr", err)
	}
}

// TestShutdownIsBounded: a request that never finishes does not hold Run
// past ShutdownTimeout.
func TestShutdownIsBounded(t *testing.T) {
	s := New("127.0.0.1:0", quiet())
	started := make(chan struct{})
	s.Handle("GET /hang", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // ends only when the server closes the connection
	}))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	<-s.Listening()
	go func() {
		res, err := http.Get("http://" + s.Addr() + "/hang")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-started
	began := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Run still running well past ShutdownTimeout")
	}
	if d := time.Since(began); d < ShutdownTimeout {
		t.Errorf("Run returned after %v, before the grace of %v: in-flight requests were cut short", d, ShutdownTimeout)
	}
}

// TestRunTwice: a second Run, while the first serves or after it failed,
// returns an error and leaves the first one serving.
func TestRunTwice(t *testing.T) {
	s := New("127.0.0.1:0", quiet())
	base := serve(t, s)
	if err := s.Run(t.Context()); err == nil || err.Error() != "httpserver: Run called twice" {
		t.Fatalf("second Run = %v, want httpserver: Run called twice", err)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz after the second Run = %d, want 200 from the first", code)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	failed := New(ln.Addr().String(), quiet())
	if err := failed.Run(t.Context()); err == nil {
		t.Fatal("Run on a taken port succeeded")
	}
	if err := failed.Run(t.Context()); err == nil || err.Error() != "httpserver: Run called twice" {
		t.Fatalf("Run after a failed Run = %v, want httpserver: Run called twice", err)
	}
}
