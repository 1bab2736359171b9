// Package testenv gives tests the Kafka and Redis backends they run against, so
// that one test suite runs on the fast in-process fakes and, unchanged, on the
// real Apache Kafka broker and real redis-server (standalone and Cluster).
//
// Without environment variables a test gets an in-process kfake cluster and a
// miniredis server. scripts/test.sh starts real services and sets:
//
//	COHORTSYNC_TEST_KAFKA_BROKERS  host:port of a real broker
//	COHORTSYNC_TEST_REDIS_URL      redis:// URL of a standalone redis-server
//	COHORTSYNC_TEST_REDIS_CLUSTER  comma-separated masters of a Redis Cluster
//	COHORTSYNC_INTEGRATION=1       every real backend above is required
//
// and, for the TLS and credential tests (KafkaTLS, RedisTLS, KafkaSASL,
// RedisACL, RedisACLBackends; in-process servers serving the same without
// them): COHORTSYNC_TEST_TLS_DIR (the CA and a client certificate),
// COHORTSYNC_TEST_KAFKA_TLS_BROKERS (mutual TLS),
// COHORTSYNC_TEST_KAFKA_SASL_BROKERS with _USER and _PASSWORD (SCRAM over
// TLS), COHORTSYNC_TEST_REDIS_TLS_URL (mutual TLS) and
// COHORTSYNC_TEST_REDIS_ACL_USER with _PASSWORD (an ACL user of that server
// and of the Cluster).
//
// With COHORTSYNC_INTEGRATION=1 a missing variable fails the test instead of
// silently falling back to a fake.
package testenv
