package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestServeAdminAPI runs serve with the consumer part alone and the admin
// API on --http-addr, with a token made as the README says: sync now runs
// the stored mapping through the real runner and its members are applied;
// a list segment's edit goes through Kafka to Redis; a lookup finds a
// member, which an erase then removes; no token is a 401.
func TestServeAdminAPI(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	ctx := testenv.Context(t, 2*time.Minute)
	rc, sc := storeBeta(t, ctx, name)
	var out, errs bytes.Buffer
	if err := TokensCreate(ctx, rc, sc, "test", "admin", &out, &errs); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())

	cfg := scheduledServe(t, name)
	cfg.Parts, cfg.AdminAPI = []string{PartConsumer}, true
	addr := cfg.HTTPAddr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proc := DefaultProcess()
	logs := &syncWriter{w: &bytes.Buffer{}}
	proc.LogLevel = "debug"
	noEnv := func(string) (string, bool) { return "", false }
	stop := runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, noEnv, kafkax.Config{Brokers: brokers}, rc, sc, cfg, logs)
	})
	defer stop()

	call := func(method, path, tok, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil // not listening yet
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	testenv.Eventually(t, 30*time.Second, "the API answers", func() bool {
		code, _ := call("GET", "/api/v1/whoami", token, "")
		return code == 200
	})
	if code, _ := call("GET", "/api/v1/mappings", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, m := call("POST", "/api/v1/mappings/beta/sync", token, ""); code != http.StatusAccepted {
		t.Fatalf("sync: %d %v", code, m)
	}
	members := func(segment string) []string {
		_, m := call("GET", "/api/v1/destinations/staging/segments/"+segment+"/members", token, "")
		var keys []string
		items, _ := m["items"].([]any)
		for _, k := range items {
			keys = append(keys, k.(string))
		}
		slices.Sort(keys)
		return keys
	}
	testenv.Eventually(t, 60*time.Second, "the manual run recorded and its members applied", func() bool {
		_, runs := call("GET", "/api/v1/runs?mapping=beta&trigger=manual", token, "")
		items, _ := runs["items"].([]any)
		return len(items) == 1 && slices.Equal(members("beta-users"), []string{"a", "b", "c"})
	})
	if code, m := call("POST", "/api/v1/destinations/staging/segments/vip/members/add", token, `{"keys":["x","y"]}`); code != 200 {
		t.Fatalf("add: %d %v", code, m)
	}
	testenv.Eventually(t, 60*time.Second, "the list edit applied", func() bool {
		return slices.Equal(members("vip"), []string{"x", "y"})
	})
	// Lookup, status and erase, through the event path.
	if code, m := call("GET", "/api/v1/destinations/staging/contexts/b/segments", token, ""); code != 200 || m["member"] != true {
		t.Fatalf("lookup: %d %v", code, m)
	}
	if code, m := call("GET", "/api/v1/status", token, ""); code != 200 || len(m["destinations"].([]any)) != 1 {
		t.Fatalf("status: %d %v", code, m)
	}
	if code, m := call("POST", "/api/v1/destinations/staging/erase", token, `{"context_key":"b"}`); code != 200 || len(m["segments"].([]any)) != 2 {
		t.Fatalf("erase: %d %v", code, m)
	}
	testenv.Eventually(t, 60*time.Second, "the erase applied", func() bool {
		_, m := call("GET", "/api/v1/destinations/staging/contexts/b/segments", token, "")
		return m["member"] == false && slices.Equal(members("beta-users"), []string{"a", "c"})
	})
	stop()
	if strings.Contains(logs.String(), token) {
		t.Error("the token is in the log")
	}
}

// syncWriter is a log buffer written by serve's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
