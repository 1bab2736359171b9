package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// DestinationsList writes a table of every stored destination to stdout:
// where its Redis password is read from, never the password.
func DestinationsList(ctx context.Context, rc redisx.Config, sc catalogstore.Config, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		ds, err := s.Destinations(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "NAME\tENVIRONMENT\tREDIS\tPREFIX\tPASSWORD\tFAN-IN")
		for _, d := range ds {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\n", d.Name, d.Environment, d.Redacted(), d.Prefix(), d.Password, d.FanIn)
		}
		return flush(w)
	})
}

// DestinationsShow writes the stored destination called name to stdout in
// the mappings file's form, normalised, as YAML or JSON (like
// MappingsShow).
func DestinationsShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name, format string, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		d, err := s.Destination(ctx, name)
		if err != nil {
			return err
		}
		return writeFormatted(stdout, format, d.FileForm(), "destination "+name)
	})
}

// DestinationsTest checks that the stored destination called name can be
// used: its password is read (lookupEnv, files), its Redis answers PING and
// lets the synchronized-on key of its prefix be read, all within timeout.
// It writes "destination NAME: connected (...)" to stdout, or returns
// "destination NAME: not connected: " and the error it met.
func DestinationsTest(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name string, timeout time.Duration,
	lookupEnv func(string) (string, bool), stdout io.Writer) error {
	var d catalog.Destination
	if err := withStore(rc, sc, func(s *catalogstore.Store) (err error) {
		d, err = s.Destination(ctx, name)
		return err
	}); err != nil {
		return err
	}
	if err := checkDestination(ctx, d, timeout, lookupEnv, os.ReadFile); err != nil {
		return fmt.Errorf("destination %s: not connected: %w", name, err)
	}
	return say(stdout, "destination %s: connected (redis %s, prefix %s)\n", name, d.Redacted(), d.Prefix())
}

// checkDestination connects to d's Redis as the consumer would and reads
// what the SDKs read first, bounded by timeout.
func checkDestination(ctx context.Context, d catalog.Destination, timeout time.Duration,
	lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) error {
	cfg, err := d.RedisConfig(lookupEnv, readFile)
	if err != nil {
		return err
	}
	cfg.Timeout, cfg.PoolSize = timeout, 1
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return withRedis(cfg, func(rdb redis.UniversalClient) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		// Absent until a consumer first writes the prefix: nil is fine.
		key := bigsegments.SyncTimeKey(d.Prefix())
		if err := rdb.Get(ctx, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("get %s: %w", key, err)
		}
		return nil
	})
}

// DestinationsToken creates or rotates the push token of the destination
// called name and writes it to stdout, the only time it is shown: the
// store keeps its SHA-256.
func DestinationsToken(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name string, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		token, err := s.RotateToken(ctx, name)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	})
}
