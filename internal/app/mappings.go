package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// LoadMappings reads and decodes the mappings file at path. A file that
// cannot be read is a *setting.Error of "file"; a file with problems
// returns catalog.Decode's error, every problem at once (catalog.Errors).
func LoadMappings(path string) (*catalog.Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, setting.Invalid("file", path, "a readable mappings file (%v)", err)
	}
	return catalog.Decode(path, data)
}

// withStore runs f on the catalog store in the Redis of rc, closing the
// connection after.
func withStore(rc redisx.Config, sc catalogstore.Config, f func(*catalogstore.Store) error) error {
	return withStoreRedis(rc, sc, func(s *catalogstore.Store, _ redis.UniversalClient) error { return f(s) })
}

// withStoreRedis is withStore whose f also gets the Redis client.
func withStoreRedis(rc redisx.Config, sc catalogstore.Config, f func(*catalogstore.Store, redis.UniversalClient) error) error {
	// go-redis logs every failed dial itself; the command reports the
	// error it ends with, once.
	setRedisLogger(quietRedis{})
	return withRedis(rc, func(rdb redis.UniversalClient) error {
		s, err := catalogstore.New(rdb, sc)
		if err != nil {
			return err
		}
		return f(s, rdb)
	})
}

// withRedis runs f on a client of the Redis of rc, closed after.
func withRedis(rc redisx.Config, f func(redis.UniversalClient) error) (err error) {
	rdb, err := redisx.Open(rc)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rdb.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close redis: %w", cerr))
		}
	}()
	return f(rdb)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// MappingsApply stores the destinations and mappings of c (LoadMappings) in
// the store in the Redis of rc and writes what changed for each to stdout,
// one line per entry: change, kind, name. Settings were validated by the
// caller.
func MappingsApply(ctx context.Context, rc redisx.Config, sc catalogstore.Config, c *catalog.Catalog, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		res, err := s.Apply(ctx, c)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, r := range res {
			note := ""
			if r.Change == catalogstore.NotInFile {
				// Deleting is a decision, not what a shorter file implies.
				note = "\tkept: not in the file"
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s%s\n", r.Change, r.Kind, r.Name, note)
		}
		return flush(w)
	})
}

// MappingsList writes a table of every stored mapping to stdout.
func MappingsList(ctx context.Context, rc redisx.Config, sc catalogstore.Config, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		ms, err := s.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "NAME\tSEGMENT\tDESTINATIONS\tSCHEDULE\tENABLED")
		for _, m := range ms {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\n", m.Name, m.Segment, strings.Join(m.Destinations, ","), m.Schedule, m.Enabled)
		}
		return flush(w)
	})
}

// say writes one message to stdout.
func say(stdout io.Writer, format string, args ...any) error {
	if _, err := fmt.Fprintf(stdout, format, args...); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func flush(w *tabwriter.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// Output formats of MappingsShow.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// ValidateFormat reports a format MappingsShow does not write as a
// *setting.Error of "output".
func ValidateFormat(format string) error {
	if format != FormatYAML && format != FormatJSON {
		return setting.Invalid("output", format, "%s or %s", FormatYAML, FormatJSON)
	}
	return nil
}

// MappingsSetEnabled pauses (enabled false) or resumes the stored mapping
// called name and says which, or that it already was, on stdout.
func MappingsSetEnabled(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name string, enabled bool, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		ch, err := s.SetEnabled(ctx, name, enabled)
		if err != nil {
			return err
		}
		state := map[bool]string{false: "paused", true: "resumed"}[enabled]
		if ch == catalogstore.Unchanged {
			state = map[bool]string{false: "already paused", true: "already enabled"}[enabled]
		}
		return say(stdout, "mapping %s: %s\n", name, state)
	})
}

// MappingsDelete deletes the stored mapping called name. Its segment's
// members stay in Redis, and stdout says so.
func MappingsDelete(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name string, stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		if err := s.Delete(ctx, name); err != nil {
			return err
		}
		return say(stdout, "mapping %s: deleted; its segment's members stay in Redis\n", name)
	})
}

// MappingsShow writes the stored mapping called name to stdout in the
// mappings file's form, normalised (every default written out), as YAML or
// JSON: an entry that can be pasted back into the file.
func MappingsShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name, format string, stdout io.Writer) error {
	return withStoreRedis(rc, sc, func(s *catalogstore.Store, rdb redis.UniversalClient) error {
		m, err := s.Get(ctx, name)
		if err != nil {
			return err
		}
		if err := writeFormatted(stdout, format, m.FileForm(), "mapping "+name); err != nil {
			return err
		}
		if format != FormatYAML {
			return nil
		}
		return writeBumpNote(ctx, rdb, sc.Prefix, m, stdout)
	})
}

// writeFormatted writes v, an entry in the mappings file's form, to stdout
// as YAML or JSON; what names it in errors.
func writeFormatted(stdout io.Writer, format string, v any, what string) error {
	var (
		out []byte
		err error
	)
	if format == FormatJSON {
		out, err = json.MarshalIndent(v, "", "  ")
		out = append(out, '\n')
	} else {
		out, err = yaml.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
