package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
)

// mappingControl is the control plane of a command that runs stored
// mappings: the Redis holding the catalog, the leases and the sequence
// counters, and how runs share them.
type mappingControl struct {
	redis       redisx.Config
	store       catalogstore.Config
	leaseTTL    time.Duration
	rebuildWait time.Duration
	// retention of the runs recorded in the history
	retention time.Duration
}

// mappingControlSettings are the settings bindMappingControl binds.
var mappingControlSettings = []string{"redis-url", "redis-cluster-addrs", "redis-username", "redis-password", "redis-tls",
	"redis-tls-ca-file", "redis-tls-cert-file", "redis-tls-key-file", "redis-pool-size", "redis-timeout", "control-prefix", "lease-ttl", "rebuild-wait", "runs-retention"}

// requestSettings are the settings of a sync of one segment from a CSV,
// which a mapping replaces.
var requestSettings = []string{"env", "segment", "csv", "id-column", "context-kind", "generation", "source"}

func bindMappingControl(s *setting.Set, c *mappingControl) {
	bindRedis(s, &c.redis)
	s.String(&c.store.Prefix, "control-prefix", "CONTROL_PREFIX", "key prefix of the control-plane keys: mappings, leases, sequence counters (default \"cohortsync:control:\")")
	bindLease(s, c, "a run")
}

// bindRetention binds how long runs are kept, by the commands that record
// them.
func bindRetention(s *setting.Set, c *mappingControl) {
	s.Duration(&c.retention, "runs-retention", "RUNS_RETENTION", "how long the runs recorded are kept in the run history")
}

// newMappingControl returns the defaults, shown as such in --help.
func newMappingControl() mappingControl {
	return mappingControl{leaseTTL: segmentlease.DefaultTTL, rebuildWait: segmentstore.DefaultRebuildWait, retention: runstore.DefaultRetention}
}

// bindLease binds how the runs of who (a run, the purge) share segments.
func bindLease(s *setting.Set, c *mappingControl, who string) {
	s.Duration(&c.leaseTTL, "lease-ttl", "CONTROL_LEASE_TTL", "a segment's lease outlives a stalled or killed holder by this long")
	s.Duration(&c.rebuildWait, "rebuild-wait", "PRODUCER_REBUILD_WAIT", "how long "+who+" waits for the consumer before reading a segment back from its destination")
}

// runConfig is the mapping runs' configuration on top of the producer's.
func (c *mappingControl) runConfig(p producer.Config) mappingrun.Config {
	return mappingrun.Config{Producer: p, Lease: segmentlease.Config{Prefix: c.store.Prefix, TTL: c.leaseTTL}, RebuildWait: c.rebuildWait}
}

func (c *mappingControl) validate() error {
	return errors.Join(c.redis.Validate(), c.store.Validate(), runstore.Config{Retention: c.retention}.Validate())
}

// refuseFlags reports each of names given on the command line although
// the command's mode excludes it; want says what the mode wants instead. Their variables are not refused: one
// environment commonly serves several commands and modes.
func refuseFlags(cmd *cobra.Command, want string, names ...string) error {
	var errs []error
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			errs = append(errs, setting.Invalid(n, f.Value.String(), "%s", want))
		}
	}
	return errors.Join(errs...)
}
