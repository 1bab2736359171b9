package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// csvMapping is a stored daily CSV mapping called churn into one
// destination, production, whose prefix is a fresh client-side ID (the
// test's own keys); the control Redis and the destination are one server.
type csvMapping struct {
	clientSideID string
	cohort       string // the CSV file; writeCSV replaces it
	rc           redisx.Config
	sc           catalogstore.Config
}

func newCSVMapping(t *testing.T, ctx context.Context, segment string, keys ...string) *csvMapping {
	t.Helper()
	return newCSVMappingWith(t, ctx, segment, "", keys...)
}

// newCSVMappingWith is newCSVMapping with extra lines in the mapping's
// entry (indented by four spaces, such as a notify block).
func newCSVMappingWith(t *testing.T, ctx context.Context, segment, extra string, keys ...string) *csvMapping {
	t.Helper()
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	f := &csvMapping{clientSideID: hex.EncodeToString(raw[:]), cohort: filepath.Join(t.TempDir(), "cohort.csv")}
	f.writeCSV(t, keys...)
	redisURL := testenv.RedisURL(t)
	cat, err := catalog.Decode("mappings.yaml", []byte(fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    client_side_id: %s
mappings:
  - name: churn
    source: {csv: %q}
    segment: %s
    destinations: [production]
    schedule: daily
%s`, redisURL, f.clientSideID, f.cohort, segment, extra)))
	if err != nil {
		t.Fatal(err)
	}
	f.rc = redisx.Config{URL: redisURL, PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
	f.sc = catalogstore.Config{Prefix: testenv.Name(t) + ":"}
	if err := MappingsApply(ctx, f.rc, f.sc, cat, io.Discard); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *csvMapping) writeCSV(t *testing.T, keys ...string) {
	t.Helper()
	if err := os.WriteFile(f.cohort, []byte("user_id\n"+strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
