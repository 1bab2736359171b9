package redisconn

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/pkg/kafkaconf"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/envflag"
)

// Config selects and tunes the Redis deployment. Exactly one of URL and
// ClusterAddrs is set; zero PoolSize and Timeout take their defaults.
type Config struct {
	// URL of a standalone server: redis://[user:password@]host:port[/db] or
	// rediss:// for TLS, with go-redis's query options. No default.
	URL string
	// ClusterAddrs are host:port of Redis Cluster masters used to discover the
	// cluster (one reachable master is enough). No default.
	ClusterAddrs []string
	// Username and Password authenticate to the Cluster. For a standalone
	// server they belong in URL. Default none.
	Username, Password string
	// TLS connects to the Cluster with TLS (rediss:// does it for URL).
	// Default false.
	TLS bool
	// PoolSize is the number of connections per server. Default 16: a
	// pipeline holds one connection for its whole round trip, so a few
	// concurrent pipelines plus the periodic writers need only a handful.
	PoolSize int
	// Timeout bounds dialing and each read or write on a connection.
	// Default 10s: a pipeline of tens of thousands of commands is one write
	// and one long read, which go-redis's 3 s default can cut short on a busy
	// server.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultPoolSize = 16
	DefaultTimeout  = 10 * time.Second
)

// RegisterFlags registers the Redis settings on fs with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	fs.StringVar(&c.URL, "redis-url", c.URL, "standalone Redis `URL` (redis:// or rediss://); exactly one of --redis-url and --redis-cluster-addrs")
	fs.Var((*envflag.StringList)(&c.ClusterAddrs), "redis-cluster-addrs", "comma-separated host:port of Redis Cluster masters")
	fs.StringVar(&c.Username, "redis-username", c.Username, "Redis Cluster ACL user (standalone: put it in --redis-url)")
	fs.StringVar(&c.Password, "redis-password", c.Password, "Redis Cluster password (standalone: put it in --redis-url)")
	fs.BoolVar(&c.TLS, "redis-tls", c.TLS, "connect to the Redis Cluster with TLS (standalone: use rediss://)")
	fs.IntVar(&c.PoolSize, "redis-pool-size", c.PoolSize, "connections per Redis server")
	fs.DurationVar(&c.Timeout, "redis-timeout", c.Timeout, "Redis dial, read and write timeout")
}

// Validate checks the settings; errors name the flag.
func (c *Config) Validate() error {
	switch {
	case c.URL == "" && len(c.ClusterAddrs) == 0:
		return errors.New("--redis-url, --redis-cluster-addrs: exactly one is required, got neither")
	case c.URL != "" && len(c.ClusterAddrs) > 0:
		return errors.New("--redis-url, --redis-cluster-addrs: exactly one is required, got both")
	}
	if c.URL != "" {
		opts, err := redis.ParseURL(c.URL)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", redactURLError(err, c.URL))
		}
		if err := kafkaconf.CheckHostPort(opts.Addr); err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		switch {
		case c.Username != "":
			return errors.New("--redis-username: only with --redis-cluster-addrs (put it in --redis-url)")
		case c.Password != "":
			return errors.New("--redis-password: only with --redis-cluster-addrs (put it in --redis-url)")
		case c.TLS:
			return errors.New("--redis-tls: only with --redis-cluster-addrs (use a rediss:// URL)")
		}
	}
	for _, a := range c.ClusterAddrs {
		if err := kafkaconf.CheckHostPort(a); err != nil {
			return fmt.Errorf("--redis-cluster-addrs: %w", err)
		}
	}
	// Zero means the default (a Config built in code need not set them).
	if c.PoolSize < 0 || c.PoolSize > 1000 {
		return fmt.Errorf("--redis-pool-size: %d is not between 1 and 1000", c.PoolSize)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("--redis-timeout: %v is negative", c.Timeout)
	}
	return nil
}

// redactURLError keeps a password given in the URL out of error messages,
// which end up in logs.
func redactURLError(err error, url string) error {
	// url.Parse's errors quote the whole URL, credentials included.
	var ue *neturl.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("invalid URL: %w", ue.Err)
	}
	msg := err.Error()
	if i := strings.Index(url, "://"); i >= 0 {
		if j := strings.LastIndexByte(url, '@'); j > i {
			if k := strings.IndexByte(url[i+3:j], ':'); k >= 0 {
				if pw := url[i+3+k+1 : j]; pw != "" {
					msg = strings.ReplaceAll(msg, pw, "xxxxx")
				}
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// Open validates cfg and returns a client for it: a *redis.Client for URL, a
// *redis.ClusterClient for ClusterAddrs. It does not connect; the first
// command does.
func Open(cfg Config) (redis.UniversalClient, error) {
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL != "" {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("--redis-url: %w", redactURLError(err, cfg.URL))
		}
		tune(&opts.PoolSize, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.ContextTimeoutEnabled, cfg)
		return redis.NewClient(opts), nil
	}
	opts := &redis.ClusterOptions{
		Addrs:    append([]string(nil), cfg.ClusterAddrs...),
		Username: cfg.Username,
		Password: cfg.Password,
	}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tune(&opts.PoolSize, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.ContextTimeoutEnabled, cfg)
	return redis.NewClusterClient(opts), nil
}

// tune applies the pipeline-friendly pool and timeouts, keeping what a URL's
// query string set explicitly (go-redis leaves unset fields at zero or its
// own defaults, which we override only when they are go-redis's).
func tune(pool *int, dial, read, write, poolTimeout *time.Duration, ctxTimeout *bool, cfg Config) {
	if *pool == 0 {
		*pool = cfg.PoolSize
	}
	if *dial == 0 {
		*dial = cfg.Timeout
	}
	if *read == 0 {
		*read = cfg.Timeout
	}
	if *write == 0 {
		*write = cfg.Timeout
	}
	if *poolTimeout == 0 {
		*poolTimeout = cfg.Timeout + time.Second
	}
	// Honour the caller's context deadline on every command, so a stuck
	// server cannot hold a shutdown longer than the caller allows.
	*ctxTimeout = true
}
