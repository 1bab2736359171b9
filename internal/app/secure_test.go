package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestSyncThenConsumeOverSASL: the Kafka settings reach every client of both
// commands. A cluster that refuses unauthenticated clients serves a sync
// (admin client, writer) and a consumer (metadata client, group, partition
// readers) built from one kafkax.Config with SCRAM credentials; with a wrong
// password the sync fails. No password, Kafka's or Redis's, right or wrong,
// appears in any log line (at debug level) or error.
func TestSyncThenConsumeOverSASL(t *testing.T) {
	const kafkaPW, wrongPW, redisPW = "sasl-pw-7f3e2a91", "wrong-pw-b81c07d4", "redis-pw-52d9c6e0"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(kafkax.MechanismScramSHA256, "alice", kafkaPW))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kc := kafkax.Config{Brokers: cluster.ListenAddrs(), DialTimeout: 5 * time.Second,
		SASL: kafkax.SASLConfig{Mechanism: kafkax.MechanismScramSHA256, Username: "alice", Password: kafkaPW}}
	noEnv := func(string) (string, bool) { return "", false }
	ctx := testenv.Context(t, 2*time.Minute)
	proc := DefaultProcess()
	proc.LogLevel = "debug" // every line a secret could slip into

	pcfg, req, csv, opts := twoMemberSync(t)
	var logs testenv.Buffer

	wrong := kc
	wrong.SASL.Password = wrongPW
	wrongErr := Sync(ctx, proc, noEnv, wrong, pcfg, req, csv, opts, &logs, &logs)
	if wrongErr == nil {
		t.Fatal("Sync with a wrong SASL password succeeded")
	}
	if err := Sync(ctx, proc, noEnv, kc, pcfg, req, csv, opts, &logs, &logs); err != nil {
		t.Fatalf("Sync = %v", err)
	}

	m := miniredis.RunT(t)
	m.RequireAuth(redisPW)
	rc := redisx.Config{URL: "redis://:" + redisPW + "@" + m.Addr() + "/0", PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
	consumeUntilMembers(t, ctx, proc, kc, rc, pcfg.Topic, "seg.g1", &logs, "a", "b")
	badRedis := rc
	badRedis.URL = "redis://:" + wrongPW + "@" + m.Addr() + "/0"
	cfg := consumer.Config{Topic: pcfg.Topic, GroupID: testenv.Name(t), RedisPrefix: testenv.Name(t), StartupTimeout: 2 * time.Second}
	badErr := Consume(ctx, proc, noEnv, kc, badRedis, "", cfg, &logs)
	if badErr == nil {
		t.Fatal("Consume with a wrong Redis password succeeded")
	}
	for _, pw := range []string{kafkaPW, wrongPW, redisPW} {
		for what, text := range map[string]string{"the logs": logs.String(), "the wrong Kafka password's error": wrongErr.Error(), "the wrong Redis password's error": badErr.Error()} {
			if strings.Contains(text, pw) {
				t.Errorf("%s hold the password %q", what, pw)
			}
		}
	}
	if !strings.Contains(logs.String(), "sync run ") || !strings.Contains(logs.String(), "msg=consuming") {
		t.Fatalf("the output of the sync or the consumer is missing: the check above saw too little\n%.3000s", logs.String())
	}
}

// consumeUntilMembers runs Consume with kc and rc into a prefix of the
// test's own until keys are members of segment ref there, failing the test
// after 30s or if Consume returns early.
func consumeUntilMembers(t *testing.T, ctx context.Context, proc Process, kc kafkax.Config, rc redisx.Config, topic, ref string, logs io.Writer, keys ...string) {
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
	go func() { errc <- Consume(cctx, proc, noEnv, kc, rc, "", ccfg, logs) }()
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
	consumeUntilMembers(t, ctx, proc, kc, rc, pcfg.Topic, "seg.g1", io.Discard, "a", "b")
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
