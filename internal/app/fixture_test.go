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
	f.rc = redisAt(redisURL)
	f.sc = applyCatalog(t, ctx, f.rc, testenv.Name(t), fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    client_side_id: %s
mappings:
  - name: churn
    source: {csv: %q}
    segment: %s
    destinations: [production]
    schedule: daily
%s`, redisURL, f.clientSideID, f.cohort, segment, extra))
	return f
}

func (f *csvMapping) writeCSV(t *testing.T, keys ...string) {
	t.Helper()
	writeCohortAt(t, f.cohort, keys...)
}

// betaCatalog is the YAML of a catalog of one destination, staging, whose
// redis is the YAML flow mapping redis and whose prefix is name-dst, and
// one mapping, beta, of the CSV cohort into segment beta-users on schedule,
// with extra lines in the mapping's entry (indented by four spaces, such
// as a notify block).
func betaCatalog(redis, name, cohort, schedule, extra string) string {
	return fmt.Sprintf(`destinations:
  - name: staging
    redis: %s
    prefix: %s-dst
mappings:
  - name: beta
    source: {csv: %q}
    segment: beta-users
    destinations: [staging]
    schedule: %s
%s`, redis, name, cohort, schedule, extra)
}

// applyCatalog stores the catalog of the YAML text through rc under the
// prefix name+":", the returned configuration.
func applyCatalog(t *testing.T, ctx context.Context, rc redisx.Config, name, yaml string) catalogstore.Config {
	t.Helper()
	cat, err := catalog.Decode("mappings.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	sc := catalogstore.Config{Prefix: name + ":"}
	if err := MappingsApply(ctx, rc, sc, cat, io.Discard); err != nil {
		t.Fatal(err)
	}
	return sc
}

// redisAt is the configuration of the Redis at url with the default pool
// and timeout.
func redisAt(url string) redisx.Config {
	return redisx.Config{URL: url, PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
}

// writeCohort writes a cohort CSV of keys (column user_id) and returns its
// path.
func writeCohort(t *testing.T, keys ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cohort.csv")
	writeCohortAt(t, path, keys...)
	return path
}

// writeCohortAt writes a cohort CSV of keys (column user_id) to path.
func writeCohortAt(t *testing.T, path string, keys ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("user_id\n"+strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
