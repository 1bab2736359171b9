package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer/drift"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// DriftScope is what check and rebuild compare: the consumer's routing of
// environments to prefixes of one Redis (consume's --redis-prefix and
// --env-prefix), and the environments chosen (none: every destination).
type DriftScope struct {
	Prefix      string
	EnvPrefixes map[string]string
	Envs        []string
}

// ErrDrift is returned by Check when Redis and the log disagree.
var ErrDrift = errors.New("drift: Redis and the log disagree")

// config builds drift's destinations and route: one destination per
// distinct prefix of the environments chosen.
func (s DriftScope) config(rdb redis.UniversalClient, base drift.Config) (drift.Config, error) {
	prefixOf := func(env string) string {
		if p, ok := s.EnvPrefixes[env]; ok {
			return p
		}
		return s.Prefix
	}
	names := map[string][]string{} // prefix -> environments naming it
	if len(s.Envs) == 0 {
		names[s.Prefix] = []string{"default"}
		for _, env := range slices.Sorted(maps.Keys(s.EnvPrefixes)) {
			names[s.EnvPrefixes[env]] = append(names[s.EnvPrefixes[env]], env)
		}
	}
	for _, env := range s.Envs {
		if env == "" {
			return drift.Config{}, setting.Invalid("env", env, "environment names")
		}
		names[prefixOf(env)] = append(names[prefixOf(env)], env)
	}
	index := map[string]int{}
	for _, p := range slices.Sorted(maps.Keys(names)) {
		index[p] = len(base.Destinations)
		base.Destinations = append(base.Destinations, drift.Destination{Name: strings.Join(names[p], ","), Client: rdb, Prefix: p})
	}
	base.Route = func(env string) (int, bool) {
		i, ok := index[prefixOf(env)]
		return i, ok
	}
	return base, nil
}

// Check compares the destinations of scope with the log and prints the
// drift per segment (JSON with asJSON); drift is ErrDrift.
func Check(ctx context.Context, kc kafkax.Config, rc redisx.Config, scope DriftScope, cfg drift.Config, asJSON bool, stdout, stderr io.Writer) error {
	cfg.Progress = func(step string) { _ = say(stderr, "%s\n", step) } // progress only: the report is on stdout
	var rep drift.Report
	if err := withDrift(kc, rc, scope, cfg, func(kf *kafkax.Factory, cfg drift.Config) (err error) {
		rep, err = drift.Check(ctx, kf, cfg)
		return err
	}); err != nil {
		return err
	}
	if asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode the report: %w", err)
		}
		if err := say(stdout, "%s\n", b); err != nil {
			return err
		}
	} else if err := printReport(stdout, rep); err != nil {
		return err
	}
	if rep.Drifted > 0 {
		return fmt.Errorf("%w in %d of %d segments", ErrDrift, rep.Drifted, len(rep.Segments))
	}
	return nil
}

// Rebuild refills the destinations of scope from the log, with cfg.Group
// stopped (drift.Rebuild), printing its steps and what it wrote.
func Rebuild(ctx context.Context, kc kafkax.Config, rc redisx.Config, scope DriftScope, cfg drift.Config, stdout io.Writer) error {
	var werr error
	cfg.Progress = func(step string) { werr = errors.Join(werr, say(stdout, "%s\n", step)) }
	var res drift.Rebuilt
	if err := withDrift(kc, rc, scope, cfg, func(kf *kafkax.Factory, cfg drift.Config) (err error) {
		res, err = drift.Rebuild(ctx, kf, cfg)
		return err
	}); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if err := say(stdout, "drift repaired in %d of %d segments: %d memberships added, %d removed\n",
		res.Before.Drifted, len(res.Before.Segments), res.Added, res.Removed); err != nil {
		return err
	}
	if res.Kept > 0 {
		return say(stdout, "%d members kept although the log holds no event of theirs: partitions %v no longer start at offset 0 (retention); run their mappings again (sync --mapping) to remove them if they left the source\n",
			res.Kept, res.Before.Log.Incomplete)
	}
	return nil
}

// withDrift opens the Kafka and Redis clients, completes cfg with scope's
// destinations, calls fn and closes the clients.
func withDrift(kc kafkax.Config, rc redisx.Config, scope DriftScope, cfg drift.Config, fn func(*kafkax.Factory, drift.Config) error) (err error) {
	kf, err := kafkax.New(kc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, kf.Close()) }()
	return withRedis(rc, func(rdb redis.UniversalClient) error {
		cfg, err := scope.config(rdb, cfg)
		if err != nil {
			return err
		}
		return fn(kf, cfg)
	})
}

func printReport(w io.Writer, rep drift.Report) error {
	ends := make([]string, 0, len(rep.Log.Ends))
	for _, p := range slices.Sorted(maps.Keys(rep.Log.Ends)) {
		ends = append(ends, fmt.Sprintf("%d:%d", p, rep.Log.Ends[p]))
	}
	upTo := "offsets"
	if rep.Group != "" {
		upTo = "the offsets group " + rep.Group + " committed,"
	}
	if err := say(w, "topic %s read up to %s %s: %d events compared, %d of other environments, %d undecodable\n",
		rep.Topic, upTo, strings.Join(ends, ","), rep.Log.Events, rep.Log.OtherEnvironments, rep.Log.Undecodable); err != nil {
		return err
	}
	if len(rep.Log.Incomplete) > 0 {
		if err := say(w, "warning: partitions %v no longer start at offset 0 (retention removed events): members only those events added count as extra (extra_not_in_log)\n", rep.Log.Incomplete); err != nil {
			return err
		}
	}
	for _, s := range rep.Segments {
		state := "in sync"
		if s.Drifted() {
			state = fmt.Sprintf("%d missing%s, %d extra%s", s.Missing, examples(s.MissingExamples, s.Missing), s.Extra, examples(s.ExtraExamples, s.Extra))
			if s.NotInLog > 0 {
				state += fmt.Sprintf(" (%d with no event in the log)", s.NotInLog)
			}
		}
		if s.Changing > 0 {
			state += fmt.Sprintf("; %d members changing (events after the group's offsets: not drift)", s.Changing)
		}
		if s.OtherGeneration > 0 {
			state += fmt.Sprintf("; %d members whose only events are another generation's (compaction: not drift)", s.OtherGeneration)
		}
		if err := say(w, "%s (prefix %s) %s generation %d: log %d members, redis %d: %s\n",
			s.Destination, s.Prefix, s.Segment, s.Generation, s.LogMembers, s.RedisMembers, state); err != nil {
			return err
		}
	}
	if rep.Drifted == 0 {
		return say(w, "no drift in %d segments\n", len(rep.Segments))
	}
	return say(w, "drift in %d of %d segments\n", rep.Drifted, len(rep.Segments))
}

func examples(keys []string, n int64) string {
	if len(keys) == 0 {
		return ""
	}
	more := ""
	if int64(len(keys)) < n {
		more = ", ..."
	}
	return " (" + strings.Join(keys, ", ") + more + ")"
}
