package kafkax

import (
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Factory builds the kafka-go clients of one process from one Config: every
// client gets the same brokers, TLS and SASL settings, and the clients that
// take a Transport share one, so they share its connection pool. Create it
// with New; Close it when the clients are done.
type Factory struct {
	cfg       Config
	tls       *tls.Config // nil: plaintext
	mech      sasl.Mechanism
	transport *kafka.Transport
	closeOnce sync.Once
}

// Transport settings.
const (
	// idleTimeout closes pooled connections nobody used for this long.
	idleTimeout = 30 * time.Second
	// metadataTTL is how old the cached cluster metadata may be: a new
	// leader after a broker restart is found within seconds.
	metadataTTL = 5 * time.Second
)

// New validates cfg (reading the TLS files once) and returns its Factory.
// It touches no network.
func New(cfg Config) (*Factory, error) {
	tc, mech, errs := cfg.load()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	f := &Factory{cfg: cfg, tls: tc, mech: mech}
	f.transport = &kafka.Transport{
		DialTimeout: cfg.DialTimeout,
		IdleTimeout: idleTimeout,
		MetadataTTL: metadataTTL,
		ClientID:    cfg.ClientID,
		TLS:         f.tlsConfig(),
		SASL:        mech,
	}
	return f, nil
}

// Brokers are the bootstrap brokers, for the configurations of kafka-go
// that take addresses (kafka.ReaderConfig, kafka.ConsumerGroupConfig).
func (f *Factory) Brokers() []string { return append([]string(nil), f.cfg.Brokers...) }

// tlsConfig is a copy of the TLS configuration for one client: kafka-go
// fills in ServerName per broker on its own copy, but a shared pointer
// would let one client's change reach another.
func (f *Factory) tlsConfig() *tls.Config {
	if f.tls == nil {
		return nil
	}
	return f.tls.Clone()
}

// Transport is the shared transport of the Client and Writer values (and
// of any kafka.Client or kafka.Writer a caller builds itself). Client and
// Writer use it through Explain, so that their errors name the broker and
// the cause.
func (f *Factory) Transport() *kafka.Transport { return f.transport }

// Dialer returns a new dialer for the clients of kafka-go that dial
// connections of their own instead of using a Transport: set it as
// kafka.ReaderConfig.Dialer and kafka.ConsumerGroupConfig.Dialer.
func (f *Factory) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      f.cfg.ClientID,
		Timeout:       f.cfg.DialTimeout,
		DualStack:     true, // as kafka.DefaultDialer
		TLS:           f.tlsConfig(),
		SASLMechanism: f.mech,
	}
}

// Client returns an admin and metadata client; timeout bounds each of its
// requests (0: no bound but the caller's ctx).
func (f *Factory) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(f.cfg.Brokers...), Timeout: timeout, Transport: explainingTransport{f}}
}

// PartitionClient returns a client with a connection pool of its own, for
// the fetches of one partition, and the func that closes the pool's
// connections (idempotent). A fetch is a long poll, and a broker answers a
// connection's requests one at a time: on the shared pool, one partition's
// poll would hold up every other partition's fetch from that broker. Its
// metadata covers topic alone, and is refreshed within
// partitionMetadataTTL, so a new leader is found soon after a broker
// restarts. timeout bounds each request (0: no bound but the caller's ctx).
func (f *Factory) PartitionClient(topic string, timeout time.Duration) (*kafka.Client, func()) {
	t := &kafka.Transport{
		DialTimeout:    f.cfg.DialTimeout,
		IdleTimeout:    idleTimeout,
		MetadataTTL:    partitionMetadataTTL,
		MetadataTopics: []string{topic},
		ClientID:       f.cfg.ClientID,
		TLS:            f.tlsConfig(),
		SASL:           f.mech,
	}
	var once sync.Once
	return &kafka.Client{Addr: kafka.TCP(f.cfg.Brokers...), Timeout: timeout, Transport: t},
		func() { once.Do(t.CloseIdleConnections) }
}

// partitionMetadataTTL is how old a PartitionClient's metadata may be: its
// requests go to the leader that metadata names, and fail (to be retried)
// until a refresh names the new one.
const partitionMetadataTTL = 2 * time.Second

// WriterOptions are the settings of a Writer that differ between its users.
// A zero field takes kafka-go's default, given in its comment.
type WriterOptions struct {
	// Topic written to. Required.
	Topic string
	// BatchSize and BatchBytes bound a produce batch per partition
	// (defaults 100 messages, 1 MiB).
	BatchSize  int
	BatchBytes int64
	// BatchTimeout is how long a partial batch waits for more messages
	// (default 1s).
	BatchTimeout time.Duration
	// Compression of the batches (default none).
	Compression kafka.Compression
	// WriteTimeout bounds a produce request, its write and its
	// acknowledgement (default 10s).
	WriteTimeout time.Duration
	// MaxAttempts, WriteBackoffMin and WriteBackoffMax are kafka-go's own
	// retries of a batch (defaults 10, 100ms, 1s). They sleep without
	// watching ctx: keep them few and short, and retry with retry.Do
	// around WriteMessages.
	MaxAttempts                      int
	WriteBackoffMin, WriteBackoffMax time.Duration
	// ErrorLogger receives kafka-go's error logs (default none).
	ErrorLogger kafka.Logger
}

// Writer returns a writer with the settings every writer of the project
// needs, which kafka-go's zero values get wrong: acknowledgement by every
// in-sync replica (zero means none), partitioning by key hash as kafka.Hash
// (zero means round-robin, which breaks the per-key order of one
// membership's events; keyHash computes kafka.Hash's partitions faster)
// and no topic creation by a write (topics are created with their settings
// on purpose, not by a typo). Its transport is the shared one, but answers
// the partition count the Writer asks for every message from an answer up
// to a second old (see writerTransport).
func (f *Factory) Writer(o WriterOptions) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(f.cfg.Brokers...),
		Topic:                  o.Topic,
		Balancer:               &keyHash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              o.BatchSize,
		BatchBytes:             o.BatchBytes,
		BatchTimeout:           o.BatchTimeout,
		Compression:            o.Compression,
		WriteTimeout:           o.WriteTimeout,
		ReadTimeout:            o.WriteTimeout, // the acknowledgement is part of the request
		MaxAttempts:            o.MaxAttempts,
		WriteBackoffMin:        o.WriteBackoffMin,
		WriteBackoffMax:        o.WriteBackoffMax,
		ErrorLogger:            o.ErrorLogger,
		Transport:              newWriterTransport(explainingTransport{f}, o.Topic),
		AllowAutoTopicCreation: false,
	}
}

// Close closes the transport's idle connections. Writers and readers are
// closed by their owners first. Close is idempotent and does not block on
// the network.
func (f *Factory) Close() error {
	f.closeOnce.Do(f.transport.CloseIdleConnections)
	return nil
}
