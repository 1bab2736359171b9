package cli

import (
	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

func bindProcess(s *setting.Set, p *app.Process) {
	s.String(&p.LogLevel, "log-level", "LOG_LEVEL", "least severe level logged: debug, info, warn, error")
	s.String(&p.LogFormat, "log-format", "LOG_FORMAT", "log format: text or json")
}

// bindKafka binds the connection to Kafka (internal/kafkax, shared by every
// part of the process) and the membership topic; topicOpts apply to the
// topic.
func bindKafka(s *setting.Set, c *kafkax.Config, topic *string, topicOpts ...setting.Option) {
	bindKafkaConn(s, c, func() { s.String(topic, "topic", "TOPIC", "membership events topic", topicOpts...) })
}

// bindKafkaConn binds the connection to Kafka alone; between binds the
// flags that follow --kafka-brokers (a command's topic), so that every
// command lists them in the same order.
func bindKafkaConn(s *setting.Set, c *kafkax.Config, between func()) {
	if c.DialTimeout == 0 {
		c.DialTimeout = kafkax.DefaultDialTimeout
	}
	s.StringList(&c.Brokers, "kafka-brokers", "KAFKA_BROKERS", "Kafka bootstrap brokers, comma-separated host:port (required)")
	between()
	s.String(&c.ClientID, "kafka-client-id", "KAFKA_CLIENT_ID", "client id in the brokers' logs and quotas (default kafka-go's <program>@<host>)")
	s.Duration(&c.DialTimeout, "kafka-dial-timeout", "KAFKA_DIAL_TIMEOUT", "bound on opening a Kafka connection, TLS and SASL handshakes included")
	s.Bool(&c.TLS.Enabled, "kafka-tls", "KAFKA_TLS", "connect to the brokers with TLS")
	s.String(&c.TLS.CAFile, "kafka-tls-ca-file", "KAFKA_TLS_CA_FILE", "PEM file of the CAs the brokers' certificates are checked against (default the system's roots)")
	s.String(&c.TLS.CertFile, "kafka-tls-cert-file", "KAFKA_TLS_CERT_FILE", "PEM client certificate, for brokers requiring mutual TLS (with --kafka-tls-key-file)")
	s.String(&c.TLS.KeyFile, "kafka-tls-key-file", "KAFKA_TLS_KEY_FILE", "PEM private key of --kafka-tls-cert-file")
	s.String(&c.TLS.ServerName, "kafka-tls-server-name", "KAFKA_TLS_SERVER_NAME", "name the brokers' certificates must carry (default each broker's host name)")
	s.Bool(&c.TLS.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", "KAFKA_TLS_INSECURE_SKIP_VERIFY", "accept any broker certificate: for tests only")
	s.String(&c.SASL.Mechanism, "kafka-sasl-mechanism", "KAFKA_SASL_MECHANISM", "SASL mechanism: PLAIN (with --kafka-tls), SCRAM-SHA-256 or SCRAM-SHA-512 (default none)")
	s.String(&c.SASL.Username, "kafka-sasl-username", "KAFKA_SASL_USERNAME", "SASL user name")
	s.String(&c.SASL.Password, "kafka-sasl-password", "KAFKA_SASL_PASSWORD", "SASL password (prefer the variable: flags show in process lists)")
}

func bindRedis(s *setting.Set, c *redisx.Config) {
	if c.PoolSize == 0 {
		c.PoolSize = redisx.DefaultPoolSize
	}
	if c.Timeout == 0 {
		c.Timeout = redisx.DefaultTimeout
	}
	s.String(&c.URL, "redis-url", "REDIS_URL", "standalone Redis URL (redis:// or rediss://); exactly one of --redis-url and --redis-cluster-addrs")
	s.StringList(&c.ClusterAddrs, "redis-cluster-addrs", "REDIS_CLUSTER_ADDRS", "Redis Cluster masters, comma-separated host:port")
	s.String(&c.Username, "redis-username", "REDIS_USERNAME", "Redis Cluster ACL user (standalone: put it in --redis-url)")
	s.String(&c.Password, "redis-password", "REDIS_PASSWORD", "Redis Cluster password (standalone: put it in --redis-url)")
	s.Bool(&c.TLS, "redis-tls", "REDIS_TLS", "connect to the Redis Cluster with TLS (standalone: use rediss://)")
	s.String(&c.TLSCAFile, "redis-tls-ca-file", "REDIS_TLS_CA_FILE", "PEM file of the CAs trusted for Redis's certificates (default: the system's)")
	s.String(&c.TLSCertFile, "redis-tls-cert-file", "REDIS_TLS_CERT_FILE", "PEM client certificate for a Redis requiring one (tls-auth-clients)")
	s.String(&c.TLSKeyFile, "redis-tls-key-file", "REDIS_TLS_KEY_FILE", "PEM key of --redis-tls-cert-file")
	s.Int(&c.PoolSize, "redis-pool-size", "REDIS_POOL_SIZE", "connections per Redis server")
	s.Duration(&c.Timeout, "redis-timeout", "REDIS_TIMEOUT", "Redis dial, read and write timeout")
}

func bindRequest(s *setting.Set, r *producer.SyncRequest, csv *string, csvOpts *csvfile.Options) {
	s.String(&r.Env, "env", "SYNC_ENV", "environment of the segment; the consumer maps it to a Redis prefix (required)")
	s.String(&r.Segment, "segment", "SYNC_SEGMENT", "segment key, e.g. amplitude-7khm89cz (required)")
	s.String(csv, "csv", "SYNC_CSV", "cohort CSV export, plain or gzip (required)")
	s.String(&csvOpts.IDColumn, "id-column", "SYNC_ID_COLUMN", "CSV column holding the context key")
	s.String(&r.ContextKind, "context-kind", "SYNC_CONTEXT_KIND", "context kind of the members")
	s.Int(&r.Generation, "generation", "SYNC_GENERATION", "segment generation, >= 1; Redis refs are <segment>.g<generation>", setting.NonZero)
	s.String(&r.Source, "source", "SYNC_SOURCE", "source recorded in each event")
}

// bindProducer binds the producer's settings; batchSize names the produce
// batch size flag ("batch-size", or "producer-batch-size" beside the
// consumer's in serve).
func bindProducer(s *setting.Set, c *producer.Config, batchSize string) {
	const p = "PRODUCER_"
	s.Int(&c.TopicPartitions, "topic-partitions", p+"TOPIC_PARTITIONS", "partitions of the topic when the producer creates it")
	s.Int(&c.TopicReplicationFactor, "topic-replication-factor", p+"TOPIC_REPLICATION_FACTOR", "replication factor of the topic when created (production: 3)")
	s.Bool(&c.TopicCompact, "topic-compact", p+"TOPIC_COMPACT", "create the topic with cleanup.policy=compact")
	s.String(&c.StateDir, "state-dir", p+"STATE_DIR", "directory of the committed snapshots and sync state; keep it persistent")
	s.String(&c.ExclusionsFile, "exclusions-file", p+"EXCLUSIONS_FILE", "CSV report of excluded rows (default exclusions-<run>.csv in the segment's directory under --state-dir)")
	s.Int(&c.ExclusionsKeep, "exclusions-keep", p+"EXCLUSIONS_KEEP", "per-run exclusion reports kept per segment (default path only)")
	s.Float64(&c.MaxShrink, "max-shrink", p+"MAX_SHRINK", "refuse, publishing nothing, a snapshot that lost more than this fraction of the last one's members, e.g. 0.5 (0: off)")
	s.Int64(&c.SortChunkBytes, "sort-chunk-bytes", p+"SORT_CHUNK_BYTES", "memory budget of the snapshot sort, in bytes")
	s.Int(&c.BatchSize, batchSize, p+"BATCH_SIZE", "most messages per produce batch and partition")
	s.Int64(&c.BatchBytes, "batch-bytes", p+"BATCH_BYTES", "most bytes per produce batch and partition, before compression")
	s.Duration(&c.BatchTimeout, "batch-timeout", p+"BATCH_TIMEOUT", "how long a partial produce batch waits for more messages")
	s.String(&c.Compression, "compression", p+"COMPRESSION", "produce compression: none, gzip, snappy, lz4, zstd")
	s.Int(&c.SendBatch, "send-batch", p+"SEND_BATCH", "events per WriteMessages call")
	s.Int(&c.InFlight, "in-flight", p+"IN_FLIGHT", "concurrent WriteMessages calls")
	s.Duration(&c.WriteTimeout, "write-timeout", p+"WRITE_TIMEOUT", "timeout of one produce request")
	s.Duration(&c.RetryMaxElapsed, "retry-max-elapsed", p+"RETRY_MAX_ELAPSED", "give up retrying a transient Kafka error after this long")
}

// bindConsumer binds the consumer's settings; batchSize names the batch
// size flag ("batch-size", or "consumer-batch-size" in serve).
func bindConsumer(s *setting.Set, c *consumer.Config, batchSize string) {
	const p = "CONSUMER_"
	nz := setting.NonZero // in consumer.Config a zero means the default
	s.String(&c.GroupID, "group-id", p+"GROUP_ID", "Kafka consumer group", nz)
	s.String(&c.DeadLetterTopic, "dead-letter-topic", p+"DEAD_LETTER_TOPIC", "topic for messages that cannot be applied; must exist (default <topic>.dlq)")
	s.String(&c.RedisPrefix, "redis-prefix", p+"REDIS_PREFIX", "Redis key prefix of every environment not in --env-prefix (the SDKs' default is launchdarkly)", nz)
	s.StringMap(&c.EnvPrefixes, "env-prefix", p+"ENV_PREFIX", "per-environment Redis prefixes, env=prefix,...")
	s.Int(&c.BatchSize, batchSize, p+"BATCH_SIZE", "most messages applied in one Redis pipeline and committed together", nz)
	s.Duration(&c.FlushInterval, "flush-interval", p+"FLUSH_INTERVAL", "how long a batch waits for more messages after its first", nz)
	s.Int(&c.Pipelines, "pipelines", p+"PIPELINES", "Redis pipelines a batch is written in at once per destination, split by context key", nz)
	s.Int(&c.Appliers, "appliers", p+"APPLIERS", "apply loops sharing this member's partitions, each batching, writing and committing its own", nz)
	s.Duration(&c.SyncInterval, "sync-interval", p+"SYNC_INTERVAL", "how often the group's offsets are checked and big_segments_synchronized_on refreshed (max 60s)", nz)
	s.Duration(&c.RetryTimeout, "retry-timeout", p+"RETRY_TIMEOUT", "give up on a transient Redis or Kafka failure after this long, leaving the batch uncommitted", nz)
	s.Duration(&c.StartupTimeout, "startup-timeout", p+"STARTUP_TIMEOUT", "give up starting when Redis or Kafka do not answer (or the topics are missing) for this long", nz)
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", p+"SHUTDOWN_TIMEOUT", "time the batches in flight get to finish on shutdown", nz)
}

// bindHTTP binds the process's HTTP server address (internal/httpserver).
func bindHTTP(s *setting.Set, addr *string) {
	s.String(addr, httpserver.AddrSetting, "HTTP_ADDR", "serve /metrics, /healthz and /readyz on this host:port (default off)")
}
