package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables of the services' credentials over TLS
// (scripts/services.sh).
const (
	// EnvKafkaSASLBrokers is the broker's SASL_SSL listener: server TLS
	// (the CA in EnvTLSDir, no client certificate) and SCRAM-SHA-256 or
	// -512 as the user EnvKafkaSASLUser with EnvKafkaSASLPassword.
	EnvKafkaSASLBrokers  = "COHORTSYNC_TEST_KAFKA_SASL_BROKERS"
	EnvKafkaSASLUser     = "COHORTSYNC_TEST_KAFKA_SASL_USER"
	EnvKafkaSASLPassword = "COHORTSYNC_TEST_KAFKA_SASL_PASSWORD"
	// EnvRedisACLUser and EnvRedisACLPassword are an ACL user of the Redis
	// at EnvRedisTLSURL and of the Cluster's nodes (EnvRedisCluster), with
	// the rules of deploy/redis/cohortsync.acl.
	EnvRedisACLUser     = "COHORTSYNC_TEST_REDIS_ACL_USER"
	EnvRedisACLPassword = "COHORTSYNC_TEST_REDIS_ACL_PASSWORD"
)

// KafkaSCRAM is a Kafka listener that requires TLS and a SCRAM login.
type KafkaSCRAM struct {
	Brokers []string
	// CAFile is the CA of the brokers' certificates; the listener asks for
	// no client certificate.
	CAFile string
	// User logs in with Password by SCRAM-SHA-256 or SCRAM-SHA-512.
	User, Password string
	// Real is true for the real broker's listener.
	Real bool
}

// KafkaSASL returns a Kafka listener requiring SCRAM over TLS: the real
// broker's SASL_SSL listener when configured, else a kfake cluster serving
// TLS with a user of a random password, closed when the test ends.
func KafkaSASL(t testing.TB) KafkaSCRAM {
	t.Helper()
	if v := lookup(t, EnvKafkaSASLBrokers); v != "" {
		return KafkaSCRAM{Brokers: strings.Split(v, ","), CAFile: servicesTLS(t).CAFile,
			User: lookup(t, EnvKafkaSASLUser), Password: lookup(t, EnvKafkaSASLPassword), Real: true}
	}
	ca := NewCA(t)
	k := KafkaSCRAM{CAFile: ca.CAFile, User: "cohortsync", Password: Password(t)}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.ServerTLS(t, "kfake.test", false)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", k.User, k.Password), kfake.Superuser("SCRAM-SHA-512", k.User, k.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k.Brokers = c.ListenAddrs()
	return k
}

// RedisUser is an ACL user of a Redis deployment: a standalone server
// requiring mutual TLS (Addr, Files), or a Cluster without TLS (Addrs).
type RedisUser struct {
	// Name is "miniredis", "standalone" or "cluster".
	Name string
	// Addr is the standalone server's host:port; Files what its clients
	// need for TLS.
	Addr  string
	Files TLSFiles
	// Addrs are the Cluster's masters.
	Addrs []string
	// User logs in with Password.
	User, Password string
	// Real is true for the real redis-server.
	Real bool
}

// URL is the rediss:// URL of the standalone server logging in as u.User
// with password.
func (u RedisUser) URL(password string) string {
	return (&url.URL{Scheme: "rediss", User: url.UserPassword(u.User, password), Host: u.Addr, Path: "/0"}).String()
}

// RedisACL returns an ACL user of a standalone Redis requiring mutual TLS:
// the real server's when configured, else a miniredis serving TLS with a
// user of a random password, closed when the test ends.
func RedisACL(t testing.TB) RedisUser {
	t.Helper()
	if v := lookup(t, EnvRedisTLSURL); v != "" {
		u, err := url.Parse(v)
		if err != nil {
			t.Fatalf("%s: %v", EnvRedisTLSURL, err)
		}
		return RedisUser{Name: "standalone", Addr: u.Host, Files: servicesTLS(t), User: lookup(t, EnvRedisACLUser),
			Password: lookup(t, EnvRedisACLPassword), Real: true}
	}
	m, files := miniredisTLS(t)
	u := RedisUser{Name: "miniredis", Addr: m.Addr(), Files: files, User: "cohortsync", Password: Password(t)}
	m.RequireUserAuth(u.User, u.Password)
	return u
}

// RedisACLBackends returns the ACL users of every Redis deployment
// available, as RedisBackends the deployments: RedisACL's, plus the
// Cluster's when configured (required in integration mode).
func RedisACLBackends(t testing.TB) []RedisUser {
	t.Helper()
	us := []RedisUser{RedisACL(t)}
	if v := lookup(t, EnvRedisCluster); v != "" {
		us = append(us, RedisUser{Name: "cluster", Addrs: strings.Split(v, ","), User: lookup(t, EnvRedisACLUser),
			Password: lookup(t, EnvRedisACLPassword), Real: true})
	}
	return us
}

// miniredisTLS runs a miniredis requiring mutual TLS, closed when the test
// ends, and returns the files its clients need.
func miniredisTLS(t testing.TB) (*miniredis.Miniredis, TLSFiles) {
	t.Helper()
	ca := NewCA(t)
	m, err := miniredis.RunTLS(ca.ServerTLS(t, "redis.test", true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	cert, key := ca.Issue(t, "client", "client.test", true)
	return m, TLSFiles{CAFile: ca.CAFile, CertFile: cert, KeyFile: key}
}

// Password returns a random password, different at each call, so a test
// can grep outputs for it without matching anything else.
func Password(t testing.TB) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b[:])
}
