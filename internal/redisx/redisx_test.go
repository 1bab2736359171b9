package redisx

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"standalone url", Config{URL: "redis://127.0.0.1:6379/0"}, ""},
		{"tls url with credentials", Config{URL: "rediss://user:pw@redis.internal:6380/2"}, ""},
		{"cluster", Config{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Username: "u", Password: "p", TLS: true}, ""},
		{"neither", Config{}, "--redis-url: required, want a redis:// or rediss:// URL, or --redis-cluster-addrs"},
		{"both", Config{URL: "redis://a:1", ClusterAddrs: []string{"b:2"}}, `--redis-cluster-addrs="b:2": want nothing when --redis-url is set (exactly one of the two)`},
		{"wrong scheme", Config{URL: "http://a:1"}, `--redis-url="http://a:1": want redis://[user:password@]host:port[/db] or rediss://... (redis: invalid URL scheme: http)`},
		{"bad port", Config{URL: "redis://a:99999"}, `--redis-url="redis://a:99999": want a URL whose address is host:port with a port in 1..65535`},
		// Issue 11, item 8: go-redis reads an empty port as 6379.
		{"empty port", Config{URL: "redis://127.0.0.1:/0"}, `--redis-url="redis://127.0.0.1:/0": want a port after the ':' of the address (or neither, for 6379)`},
		{"no port is 6379", Config{URL: "redis://127.0.0.1/0"}, ""},
		{"unparsable url keeps the password out of the error", Config{URL: "redis://u:s3cret@a:1x/"}, `--redis-url="redis://u:xxxxx@a:1x/": want redis://[user:password@]host:port[/db] or rediss://... (invalid URL: invalid port ":1x" after host)`},
		{"password with url", Config{URL: "redis://a:1", Password: "s3cret"}, `--redis-password="xxxxx": want nothing with --redis-url (put the password in the URL)`},
		{"username with url", Config{URL: "redis://a:1", Username: "u"}, `--redis-username="u": want nothing with --redis-url (put the user in the URL)`},
		{"tls with url", Config{URL: "redis://a:1", TLS: true}, `--redis-tls="true": want false with --redis-url (use a rediss:// URL)`},
		{"cluster addr without port", Config{ClusterAddrs: []string{"a:1", "b"}}, `--redis-cluster-addrs="b": want comma-separated host:port with a port in 1..65535`},
		{"cluster addr without host", Config{ClusterAddrs: []string{":7000"}}, `--redis-cluster-addrs=":7000": want comma-separated host:port with a port in 1..65535`},
		{"pool too large", Config{URL: "redis://a:1", PoolSize: 5000}, `--redis-pool-size="5000": want an integer between 1 and 1000`},
		{"negative timeout", Config{URL: "redis://a:1", Timeout: -time.Second}, `--redis-timeout="-1s": want a positive duration`},
		{"tls files with a rediss url", Config{URL: "rediss://a:1", TLSCAFile: "ca.pem", TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, ""},
		{"tls files with a tls cluster", Config{ClusterAddrs: []string{"a:1"}, TLS: true, TLSCAFile: "ca.pem"}, ""},
		{"a CA file without TLS", Config{URL: "redis://a:1", TLSCAFile: "ca.pem"}, `--redis-tls-ca-file="ca.pem": want nothing without TLS (a rediss:// URL, or --redis-tls with --redis-cluster-addrs)`},
		{"a client certificate without its key", Config{URL: "rediss://a:1", TLSCertFile: "c.pem"}, `--redis-tls-key-file="": want a key file with --redis-tls-cert-file, and only with it (both or neither)`},
		{"every problem at once", Config{URL: "redis://a:1", Username: "u", PoolSize: -1}, `--redis-username="u": want nothing with --redis-url (put the user in the URL)` + "\n" + `--redis-pool-size="-1": want an integer between 1 and 1000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v\nwant %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		check func(t *testing.T, c redis.UniversalClient)
	}{
		{"url gives a standalone client with pipeline-friendly defaults", Config{URL: "redis://127.0.0.1:6390/3"}, func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "127.0.0.1:6390" || o.DB != 3 || o.PoolSize != DefaultPoolSize || o.ReadTimeout != DefaultTimeout ||
				o.WriteTimeout != DefaultTimeout || o.DialTimeout != DefaultTimeout || !o.ContextTimeoutEnabled {
				t.Errorf("options %+v", o)
			}
		}},
		{"url query options win", Config{URL: "redis://127.0.0.1:6390?read_timeout=1s&pool_size=3"}, func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.ReadTimeout != time.Second || o.PoolSize != 3 || o.WriteTimeout != DefaultTimeout {
				t.Errorf("options %+v", o)
			}
		}},
		{"cluster addrs give a cluster client", Config{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Password: "p", PoolSize: 4, Timeout: time.Second}, func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			if strings.Join(o.Addrs, ",") != "127.0.0.1:7000,127.0.0.1:7001" || o.Password != "p" || o.PoolSize != 4 || o.ReadTimeout != time.Second || o.TLSConfig != nil {
				t.Errorf("options %+v", o)
			}
		}},
		{"cluster tls", Config{ClusterAddrs: []string{"127.0.0.1:7000"}, TLS: true}, func(t *testing.T, c redis.UniversalClient) {
			if c.(*redis.ClusterClient).Options().TLSConfig == nil {
				t.Error("no TLS config")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.check(t, c)
		})
	}
	if _, err := Open(Config{}); err == nil {
		t.Error("Open(Config{}) succeeded")
	}
}

// TestOpenConnects round-trips a command through a client Open built from
// the test backend's URL.
func TestOpenConnects(t *testing.T) {
	c, err := Open(Config{URL: testenv.RedisURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := testenv.Name(t)
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, key).Result(); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

// TestOpenTLS connects to a Redis requiring mutual TLS (real redis-server
// with its TLS port in integration runs, else a TLS miniredis) with the
// CA and client certificate files; without them, the connection fails on
// the certificate, and unreadable files are named in Open's error.
func TestOpenTLS(t *testing.T) {
	url, files := testenv.RedisTLS(t)
	ctx := testenv.Context(t, 30*time.Second)
	ping := func(cfg Config) error {
		c, err := Open(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	if err := ping(Config{URL: url, TLSCAFile: files.CAFile, TLSCertFile: files.CertFile, TLSKeyFile: files.KeyFile, Timeout: 5 * time.Second}); err != nil {
		t.Fatalf("PING over mutual TLS: %v", err)
	}
	if err := ping(Config{URL: url, Timeout: 5 * time.Second}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PING without the CA = %v, want a certificate error", err)
	}
	err := ping(Config{URL: url, TLSCAFile: filepath.Join(t.TempDir(), "missing.pem")})
	if err == nil || !strings.Contains(err.Error(), "--redis-tls-ca-file=") || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("Open with a missing CA file = %v", err)
	}
	err = ping(Config{URL: url, TLSCAFile: files.CAFile, TLSCertFile: files.KeyFile, TLSKeyFile: files.KeyFile})
	if err == nil || !strings.Contains(err.Error(), "--redis-tls-cert-file=") {
		t.Fatalf("Open with a key as certificate = %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://h:1/0":               "redis://h:1/0",
		"redis://user@h:1/0":          "redis://user@h:1/0",
		"redis://user:s3cret@h:1/0":   "redis://user:xxxxx@h:1/0",
		"rediss://:s3cret@h:1":        "rediss://:xxxxx@h:1",
		"redis://u:p@ss@h:1":          "redis://u:xxxxx@h:1",
		"not a url with user:pw@host": "not a url with user:pw@host",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServerCPU: a real server's CPU time grows with the work it does;
// miniredis, which does not report it, is an error rather than a zero.
func TestServerCPU(t *testing.T) {
	for _, be := range testenv.RedisBackends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			before, err := ServerCPU(ctx, be.Client)
			if be.Miniredis != nil {
				if err == nil {
					t.Fatal("no error from a server that reports no CPU time")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			key := testenv.Name(t)
			defer be.Client.Del(ctx, key)
			for range 20 {
				p := be.Client.Pipeline()
				for i := range 2000 {
					p.SAdd(ctx, key, i)
				}
				if _, err := p.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			after, err := ServerCPU(ctx, be.Client)
			if err != nil {
				t.Fatal(err)
			}
			if after <= before {
				t.Errorf("CPU time %s after 40,000 SADDs, %s before", after, before)
			}
		})
	}
}
