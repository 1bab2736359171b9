package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestSyncThenConsumeOverSASL: the credentials reach every client of both
// commands, over TLS. A Kafka listener that requires SCRAM over TLS (the
// real broker's SASL_SSL listener in integration runs, kfake otherwise)
// serves a sync (admin client, writer) logging in by SCRAM-SHA-512 and a
// consumer (metadata client, group, partition readers) by SCRAM-SHA-256; the
// consumer writes to each Redis deployment as an ACL user with a password
// (deploy/redis/cohortsync.acl's user on redis-server's TLS port, which
// requires client certificates, and on the Cluster; or a miniredis
// requiring both). A wrong Kafka or Redis password fails soon with an
// error naming the server and the cause. No password, Kafka's or Redis's,
// right or wrong, appears in any log line (at debug level), error, or body
// of the consumer's /metrics, /healthz and /readyz.
func TestSyncThenConsumeOverSASL(t *testing.T) {
	k := testenv.KafkaSASL(t)
	wrongPW := testenv.Password(t)
	kc := kafkax.Config{Brokers: k.Brokers, DialTimeout: 5 * time.Second,
		TLS:  kafkax.TLSConfig{Enabled: true, CAFile: k.CAFile},
		SASL: kafkax.SASLConfig{Mechanism: kafkax.MechanismScramSHA512, Username: k.User, Password: k.Password}}
	noEnv := func(string) (string, bool) { return "", false }
	ctx := testenv.Context(t, 2*time.Minute)
	proc := DefaultProcess()
	proc.LogLevel = "debug" // every line a secret could slip into

	pcfg, req, csv, opts := twoMemberSync(t)
	var logs testenv.Buffer
	secrets := []string{k.Password, wrongPW}
	answers := map[string]string{} // by what answered
	errs := map[string]error{}     // by what failed

	// Refused credentials are not retried as a transient error: each
	// command gives up at once, not after --retry-max-elapsed (a minute
	// here) or --startup-timeout (30s).
	wrong := kc
	wrong.SASL.Password = wrongPW
	patient := pcfg
	patient.RetryMaxElapsed = time.Minute
	errs["Sync with a wrong SASL password"] = failsSoon(t, "Sync with a wrong SASL password", func() error {
		return Sync(ctx, proc, noEnv, wrong, patient, req, csv, opts, &logs, &logs)
	}, "kafka broker "+k.Brokers[0]+": SASL SCRAM-SHA-512 login as", "SASL Authentication failed")
	if err := Sync(ctx, proc, noEnv, kc, pcfg, req, csv, opts, &logs, &logs); err != nil {
		t.Fatalf("Sync = %v", err)
	}

	kc256 := kc
	kc256.SASL.Mechanism = kafkax.MechanismScramSHA256
	cfg := consumer.Config{Topic: pcfg.Topic, RedisPrefix: testenv.Name(t), StartupTimeout: 30 * time.Second}
	var rc redisx.Config // the first backend's
	for _, r := range testenv.RedisACLBackends(t) {
		secrets = append(secrets, r.Password)
		if rc.URL == "" && rc.ClusterAddrs == nil {
			rc = aclConfig(r, r.Password)
		}
		t.Run(r.Name, func(t *testing.T) {
			rc := aclConfig(r, r.Password)
			got := consumeUntilMembers(t, ctx, proc, kc256, rc, pcfg.Topic, "seg.g1", &logs, testenv.ClosedAddr(t), "a", "b")
			if !strings.Contains(got, "cohortsync_consumer_applied_total") || !strings.Contains(got, "GET /readyz") {
				t.Fatalf("the consumer's HTTP answers are missing: the check below would see too little\n%.3000s", got)
			}
			answers["the consumer's HTTP answers on "+r.Name] = got
			if r.Real {
				// The consumer ran as a user of deploy/redis/cohortsync.acl,
				// not one allowed everything: an admin command is refused.
				rdb, err := redisx.Open(rc)
				if err != nil {
					t.Fatal(err)
				}
				err = rdb.Do(ctx, "CONFIG", "GET", "maxmemory").Err() // harmless, were it allowed
				_ = rdb.Close()
				if err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("CONFIG GET as %s = %v, want NOPERM", r.User, err)
				}
			}
			server := r.Addr
			if r.Addrs != nil {
				server = strings.Join(r.Addrs, ",")
			}
			cfg.GroupID = testenv.Name(t)
			what := "Consume with a wrong Redis password on " + r.Name
			errs[what] = failsSoon(t, what, func() error {
				return Consume(ctx, proc, noEnv, kc256, aclConfig(r, wrongPW), "", cfg, &logs)
			}, "redis "+server+" (user "+r.User+"): WRONGPASS")
		})
	}
	wrong.SASL.Mechanism = kafkax.MechanismScramSHA256
	cfg.GroupID = testenv.Name(t)
	errs["Consume with a wrong SASL password"] = failsSoon(t, "Consume with a wrong SASL password", func() error {
		return Consume(ctx, proc, noEnv, wrong, rc, "", cfg, &logs)
	}, "kafka broker "+k.Brokers[0]+": SASL SCRAM-SHA-256 login as")
	answers["the logs"] = logs.String()
	for _, pw := range secrets {
		for what, text := range answers {
			if strings.Contains(text, pw) {
				t.Errorf("%s hold the password %q", what, pw)
			}
		}
		for what, err := range errs {
			if strings.Contains(err.Error(), pw) {
				t.Errorf("the error of %s holds the password %q", what, pw)
			}
		}
	}
	if !strings.Contains(logs.String(), "sync run ") || !strings.Contains(logs.String(), "msg=consuming") {
		t.Fatalf("the output of the sync or the consumer is missing: the check above saw too little\n%.3000s", logs.String())
	}
}

// aclConfig is the Redis setting of u's deployment, logging in as u.User
// with password.
func aclConfig(u testenv.RedisUser, password string) redisx.Config {
	cfg := redisx.Config{PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
	if u.Addrs != nil {
		cfg.ClusterAddrs, cfg.Username, cfg.Password = u.Addrs, u.User, password
		return cfg
	}
	cfg.URL, cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = u.URL(password), u.Files.CAFile, u.Files.CertFile, u.Files.KeyFile
	return cfg
}

// failsSoon runs call, which must fail within 10s (a bound for a loaded
// machine, well below the retry and start-up timeouts of the calls) with
// an error naming each of want, and returns its error.
func failsSoon(t *testing.T, what string, call func() error, want ...string) error {
	t.Helper()
	began := time.Now()
	err := call()
	if err == nil {
		t.Fatalf("%s succeeded", what)
	}
	took := time.Since(began)
	if took > 10*time.Second {
		t.Errorf("%s took %v to fail", what, took)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s = %v; want it to name %q", what, err, w)
		}
	}
	t.Logf("%s (%v): %v", what, took.Round(time.Millisecond), err)
	return err
}

// consumeUntilMembers runs Consume with kc and rc into a prefix of the
// test's own until keys are members of segment ref there, failing the test
// after 30s or if Consume returns early. With httpAddr, Consume serves its
// HTTP server there, and what its /metrics, /healthz and /readyz answered
// once the members were in is returned, each body after a "GET path" line.
func consumeUntilMembers(t *testing.T, ctx context.Context, proc Process, kc kafkax.Config, rc redisx.Config, topic, ref string, logs io.Writer, httpAddr string, keys ...string) string {
	t.Helper()
	rdb, err := redisx.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() }) // after DropPrefix's cleanup
	prefix := testenv.Name(t)
	testenv.DropPrefix(t, rdb, prefix)
	ccfg := consumer.Config{Topic: topic, GroupID: testenv.Name(t), RedisPrefix: prefix, SyncInterval: 100 * time.Millisecond}
	noEnv := func(string) (string, bool) { return "", false }
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- Consume(cctx, proc, noEnv, kc, rc, httpAddr, ccfg, logs) }()
	returned := false
	defer func() {
		cancel()
		if returned {
			return
		}
		if err := <-errc; err != nil {
			t.Errorf("Consume = %v, want nil", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for _, key := range keys {
		for {
			included, _, err := segmentstore.Membership(ctx, rdb, prefix, key)
			if err == nil && slices.Contains(included, ref) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became a member (last error %v)", key, err)
			}
			select {
			case err := <-errc:
				returned = true
				t.Fatalf("Consume returned early: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if httpAddr == "" {
		return ""
	}
	var answers strings.Builder
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		fmt.Fprintf(&answers, "GET %s\n%s\n", path, getAny(t, ctx, "http://"+httpAddr+path))
	}
	return answers.String()
}

// getAny returns the status and body of a GET of url, whatever the status:
// a failing probe's body is where an error, and a secret in it, would show.
func getAny(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.Status + "\n" + string(b)
}

// TestSyncThenConsumeOverTLS: a sync and a consumer reach a Kafka and a
// Redis that both require mutual TLS (real brokers' SSL listener and
// redis-server's TLS port in integration runs, kfake and miniredis serving
// TLS otherwise), with the CA and client certificate of each set through
// the settings; without the client certificate the sync fails.
func TestSyncThenConsumeOverTLS(t *testing.T) {
	brokers, kfiles, _ := testenv.KafkaTLS(t)
	redisURL, rfiles := testenv.RedisTLS(t)
	kc := kafkax.Config{Brokers: brokers, DialTimeout: 5 * time.Second,
		TLS: kafkax.TLSConfig{Enabled: true, CAFile: kfiles.CAFile, CertFile: kfiles.CertFile, KeyFile: kfiles.KeyFile}}
	rc := redisx.Config{URL: redisURL, TLSCAFile: rfiles.CAFile, TLSCertFile: rfiles.CertFile, TLSKeyFile: rfiles.KeyFile,
		PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
	noEnv := func(string) (string, bool) { return "", false }
	ctx := testenv.Context(t, 2*time.Minute)
	proc := DefaultProcess()
	proc.LogLevel = "error"
	pcfg, req, csv, opts := twoMemberSync(t)

	noCert := kc
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	if err := Sync(ctx, proc, noEnv, noCert, pcfg, req, csv, opts, io.Discard, io.Discard); err == nil {
		t.Fatal("Sync without the client certificate succeeded")
	}
	if err := Sync(ctx, proc, noEnv, kc, pcfg, req, csv, opts, io.Discard, io.Discard); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	consumeUntilMembers(t, ctx, proc, kc, rc, pcfg.Topic, "seg.g1", io.Discard, "", "a", "b")
}

// twoMemberSync is a sync of members a and b into segment seg of staging.
func twoMemberSync(t *testing.T) (producer.Config, producer.SyncRequest, string, csvfile.Options) {
	t.Helper()
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = testenv.Name(t), t.TempDir(), 2
	pcfg.RetryMaxElapsed = 5 * time.Second
	csv := filepath.Join(t.TempDir(), "cohort.csv")
	if err := os.WriteFile(csv, []byte("user_id\na\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := producer.SyncRequest{Env: "staging", Segment: "seg", Generation: 1, ContextKind: "user", Source: "csv"}
	return pcfg, req, csv, csvfile.Options{IDColumn: "user_id"}
}

// TestServeOverSASL: serve's parts reach Kafka by SCRAM over TLS and their
// Redis as an ACL user over mutual TLS (the catalog's with the URL's
// password, the destination's with its password_env), like consume in
// TestSyncThenConsumeOverSASL: the scheduler runs a mapping, the consumer
// applies it, and no password appears in the logs (debug level) or in the
// bodies of /metrics, /healthz and /readyz.
func TestServeOverSASL(t *testing.T) {
	k := testenv.KafkaSASL(t)
	r := testenv.RedisACL(t)
	name := testenv.Name(t)
	ctx := testenv.Context(t, 2*time.Minute)
	const pwEnv = "STAGING_REDIS_PASSWORD"
	destURL := (&url.URL{Scheme: "rediss", User: url.User(r.User), Host: r.Addr, Path: "/0"}).String()
	rc := aclConfig(r, r.Password)
	destRedis := fmt.Sprintf("{url: %q, password_env: %s, tls_ca_file: %q, tls_cert_file: %q, tls_key_file: %q}",
		destURL, pwEnv, r.Files.CAFile, r.Files.CertFile, r.Files.KeyFile)
	sc := applyCatalog(t, ctx, rc, name, betaCatalog(destRedis, name, writeCohort(t, "a", "b", "c"), "hourly", ""))
	kc := kafkax.Config{Brokers: k.Brokers, DialTimeout: 5 * time.Second,
		TLS:  kafkax.TLSConfig{Enabled: true, CAFile: k.CAFile},
		SASL: kafkax.SASLConfig{Mechanism: kafkax.MechanismScramSHA512, Username: k.User, Password: k.Password}}

	cfg := scheduledServe(t, name)
	addr := cfg.HTTPAddr
	proc := DefaultProcess()
	proc.LogLevel = "debug" // every line a secret could slip into
	env := func(k string) (string, bool) {
		if k == pwEnv {
			return r.Password, true
		}
		return "", false
	}
	var logs testenv.Buffer
	stop := runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, env, kc, rc, sc, cfg, &logs)
	})
	defer stop()
	waitMetrics(t, addr, `cohortsync_schedule_runs_total{mapping="beta",outcome="done",trigger="catch-up"} 1`+"\n",
		"cohortsync_consumer_applied_total 3\n")
	var answers strings.Builder
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		fmt.Fprintf(&answers, "GET %s\n%s\n", path, getAny(t, ctx, "http://"+addr+path))
	}
	stop()
	for _, pw := range []string{k.Password, r.Password} {
		for what, text := range map[string]string{"the logs": logs.String(), "serve's HTTP answers": answers.String()} {
			if strings.Contains(text, pw) {
				t.Errorf("%s hold the password %q", what, pw)
			}
		}
	}
	if !strings.Contains(logs.String(), `msg="mapping run"`) || !strings.Contains(logs.String(), "msg=consuming") {
		t.Fatalf("the output of serve's run or consumer is missing: the check above saw too little\n%.3000s", logs.String())
	}
}
