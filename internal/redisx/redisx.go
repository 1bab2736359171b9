package redisx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/setting"
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
	// TLSCAFile is a PEM file of the CAs trusted to sign the servers'
	// certificates, for servers whose CA the system does not trust.
	// Default: the system's roots. Read when the client is opened.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the PEM certificate and key this
	// client presents, for servers requiring one (Redis's
	// tls-auth-clients, on by default). Both or neither. Default none.
	TLSCertFile, TLSKeyFile string
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

// Validate checks the settings and reports every invalid one as a
// *setting.Error. Zero PoolSize and Timeout are valid: they take their
// defaults.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.URL == "" && len(c.ClusterAddrs) == 0:
		errs = append(errs, setting.Missing("redis-url", "a redis:// or rediss:// URL, or --redis-cluster-addrs"))
	case c.URL != "" && len(c.ClusterAddrs) > 0:
		errs = append(errs, setting.Invalid("redis-cluster-addrs", c.ClusterAddrs, "nothing when --redis-url is set (exactly one of the two)"))
	}
	if c.URL != "" {
		if opts, err := redis.ParseURL(c.URL); err != nil {
			errs = append(errs, setting.Invalid("redis-url", RedactURL(c.URL), "redis://[user:password@]host:port[/db] or rediss://... (%v)", redactURLError(err, c.URL)))
		} else if !kafkax.ValidHostPort(opts.Addr) {
			errs = append(errs, setting.Invalid("redis-url", RedactURL(c.URL), "a URL whose address is %s", kafkax.HostPortForm))
		} else if u, err := neturl.Parse(c.URL); err == nil && strings.HasSuffix(u.Host, ":") {
			// go-redis reads "host:" as port 6379: an address cut short
			// must not silently reach another server.
			errs = append(errs, setting.Invalid("redis-url", RedactURL(c.URL), "a port after the ':' of the address (or neither, for 6379)"))
		}
		if c.Username != "" {
			errs = append(errs, setting.Invalid("redis-username", c.Username, "nothing with --redis-url (put the user in the URL)"))
		}
		if c.Password != "" {
			errs = append(errs, setting.Invalid("redis-password", "xxxxx", "nothing with --redis-url (put the password in the URL)"))
		}
		if c.TLS {
			errs = append(errs, setting.Invalid("redis-tls", c.TLS, "false with --redis-url (use a rediss:// URL)"))
		}
	}
	usesTLS := c.TLS || strings.HasPrefix(c.URL, "rediss://")
	if !usesTLS {
		for _, f := range []struct{ name, v string }{{"redis-tls-ca-file", c.TLSCAFile}, {"redis-tls-cert-file", c.TLSCertFile}, {"redis-tls-key-file", c.TLSKeyFile}} {
			if f.v != "" {
				errs = append(errs, setting.Invalid(f.name, f.v, "nothing without TLS (a rediss:// URL, or --redis-tls with --redis-cluster-addrs)"))
			}
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, setting.Invalid("redis-tls-key-file", c.TLSKeyFile, "a key file with --redis-tls-cert-file, and only with it (both or neither)"))
	}
	for _, a := range c.ClusterAddrs {
		if !kafkax.ValidHostPort(a) {
			errs = append(errs, setting.Invalid("redis-cluster-addrs", a, "comma-separated %s", kafkax.HostPortForm))
		}
	}
	if c.PoolSize < 0 || c.PoolSize > 1000 {
		errs = append(errs, setting.Invalid("redis-pool-size", c.PoolSize, "an integer between 1 and 1000"))
	}
	if c.Timeout < 0 {
		errs = append(errs, setting.Invalid("redis-timeout", c.Timeout, "a positive duration"))
	}
	return errors.Join(errs...)
}

// RedactURL replaces a password in a Redis URL with xxxxx, parsable or
// not, for what is printed or logged (setting errors, a destination shown
// to a user).
func RedactURL(url string) string {
	i := strings.Index(url, "://")
	j := strings.LastIndexByte(url, '@')
	if i < 0 || j <= i {
		return url
	}
	k := strings.IndexByte(url[i+3:j], ':')
	if k < 0 {
		return url
	}
	return url[:i+3+k+1] + "xxxxx" + url[j:]
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
		if err != nil { // Validate accepted it: not expected
			return nil, fmt.Errorf("redis url: %w", redactURLError(err, cfg.URL))
		}
		if opts.TLSConfig != nil {
			if err := cfg.tlsFiles(opts.TLSConfig); err != nil {
				return nil, err
			}
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
		// No ServerName: each node's is taken from the address dialled.
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if err := cfg.tlsFiles(opts.TLSConfig); err != nil {
			return nil, err
		}
	}
	tune(&opts.PoolSize, &opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.ContextTimeoutEnabled, cfg)
	return redis.NewClusterClient(opts), nil
}

// tlsFiles reads the CA and client certificate files into tc; an error
// names the setting and the file.
func (c Config) tlsFiles(tc *tls.Config) error {
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return setting.Invalid("redis-tls-ca-file", c.TLSCAFile, "a readable PEM file of CA certificates (%v)", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return setting.Invalid("redis-tls-ca-file", c.TLSCAFile, "a PEM file of CA certificates (no certificate found in it)")
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return setting.Invalid("redis-tls-cert-file", c.TLSCertFile, "a PEM certificate matching --redis-tls-key-file %s (%v)", c.TLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return nil
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
