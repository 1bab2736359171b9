package cli

import (
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/runwatch"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/receiver"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// serveRefused are settings of sync and consume that serve takes from the
// catalog instead.
var serveRefused = []string{"max-shrink", "exclusions-file", "redis-prefix", "env-prefix"}

func newServe(lookup func(string) (string, bool)) *cobra.Command {
	proc := app.DefaultProcess()
	var (
		kc       kafkax.Config
		timeZone string
	)
	mc := newMappingControl()
	pcfg := producer.DefaultConfig()
	ncfg := newNotify()
	cfg := app.ServeConfig{Consumer: consumer.DefaultConfig(), Parts: app.DefaultParts, AdminAPI: true, CatalogPoll: app.DefaultCatalogPoll, SetAsideAfter: app.DefaultSetAsideAfter, ApplyCheck: runwatch.DefaultInterval,
		Receiver: receiver.Config{MaxBodyBytes: receiver.DefaultMaxBodyBytes, MaxInFlight: receiver.DefaultMaxInFlight, Timeout: receiver.DefaultTimeout},
		Schedule: schedule.Config{Tick: schedule.DefaultTick, MaxJitter: schedule.DefaultMaxJitter, MaxConcurrent: schedule.DefaultMaxConcurrent,
			MaxAttempts: schedule.DefaultMaxAttempts, RetryBackoff: schedule.DefaultRetryBackoff, ClaimTTL: schedule.DefaultClaimTTL}}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the stored mappings on their schedules and apply their events to Redis, as one replica",
		Long: `Runs, in one process, the parts named by --parts (default scheduler,consumer):

  scheduler  runs each stored mapping on its schedule (with jitter; after
             downtime a missed schedule runs once), into each of its
             destinations;
  consumer   one member of the Kafka consumer group applying the membership
             events to the stored destinations, following changes of the
             catalog without a restart;
  receiver   partner pushes (LaunchDarkly's synced-segment API:
             POST /api/v2/segment-targets/{integrationKey}, and Amplitude
             cohort webhooks at /api/v2/amplitude-cohort-webhooks/{env}) on
             --receiver-addr, authorised by each destination's token
             (cohortsync destinations token NAME).

Replicas pointing at the same control Redis (--redis-*, --control-prefix)
and Kafka share the work: each scheduled run happens once, a run never
overlaps another run of its segment, and a replica killed mid-run leaves its
run to another one once its lease (--lease-ttl) expires. Runs until SIGINT
or SIGTERM. Mappings and destinations are managed with cohortsync mappings.

With --http-addr, serve also answers the admin API under /api/v1 there
(turn it off with --admin-api=false): JSON over HTTP for destinations,
mappings, runs and segments, described by /api/v1/openapi.json, behind the
bearer tokens of cohortsync tokens (create the first admin one there).

When a scheduled run ends, the webhook and email recipients its mapping
names (notify:) are told, by a signed POST and over SMTP (--smtp-*); the
deliveries are queued, never holding up a run, retried, and recorded with
the run (cohortsync runs show RUN).`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	s.StringList(&cfg.Parts, "parts", "SERVE_PARTS", "parts to run, comma-separated: "+strings.Join(app.Parts, ","))
	bindKafka(s, &kc, &pcfg.Topic, setting.NonZero)
	bindMappingControl(s, &mc)
	bindRetention(s, &mc)
	s.Duration(&cfg.ApplyCheck, "apply-check-interval", "SERVE_APPLY_CHECK_INTERVAL", "how often the scheduler and receiver parts check whether their published runs are applied (the consumer group committed past them)")
	s.Duration(&cfg.CatalogPoll, "catalog-poll", "SERVE_CATALOG_POLL", "how often the consumer checks the catalog for changed destinations")
	s.Duration(&cfg.SetAsideAfter, "set-aside-after", "CONSUMER_SET_ASIDE_AFTER", "a destination failing this long has its events set aside (dead-lettered, repaired by the next run of each segment) so the others go on (0: never)")
	s.Duration(&cfg.Schedule.Tick, "schedule-tick", "SCHEDULE_TICK", "how often the scheduler looks for due mappings")
	s.Duration(&cfg.Schedule.MaxJitter, "schedule-max-jitter", "SCHEDULE_MAX_JITTER", "most delay of a run after its scheduled time, the same on every replica (0: none)")
	s.Int(&cfg.Schedule.MaxConcurrent, "schedule-max-concurrent", "SCHEDULE_MAX_CONCURRENT", "most mapping runs in progress in this replica")
	s.Int(&cfg.Schedule.MaxAttempts, "schedule-max-attempts", "SCHEDULE_MAX_ATTEMPTS", "runs of a failing scheduled slot before it waits for the next slot")
	s.Duration(&cfg.Schedule.RetryBackoff, "schedule-retry-backoff", "SCHEDULE_RETRY_BACKOFF", "wait after a slot's first failure, doubling after each")
	s.Duration(&cfg.Schedule.ClaimTTL, "schedule-claim-ttl", "SCHEDULE_CLAIM_TTL", "a replica killed mid-run leaves its scheduled slot to another one this long after")
	s.String(&timeZone, "schedule-time-zone", "SCHEDULE_TIME_ZONE", "IANA time zone of daily and cron schedules (default UTC)")
	bindProducer(s, &pcfg, "producer-batch-size")
	bindConsumer(s, &cfg.Consumer, "consumer-batch-size")
	bindNotify(s, &ncfg)
	bindHTTP(s, &cfg.HTTPAddr)
	s.Bool(&cfg.AdminAPI, "admin-api", "SERVE_ADMIN_API", "serve the admin API under /api/v1 on --http-addr (tokens: cohortsync tokens create)")
	s.String(&cfg.ReceiverAddr, "receiver-addr", "RECEIVER_ADDR", "host:port the receiver part listens on for partner pushes")
	s.Int64(&cfg.Receiver.MaxBodyBytes, "receiver-max-body-bytes", "RECEIVER_MAX_BODY_BYTES", "largest push body in bytes; larger ones are answered 413")
	s.Duration(&cfg.Receiver.Timeout, "receiver-timeout", "RECEIVER_TIMEOUT", "bound on a push's work after its body is read, Kafka's acknowledgement included; then 429")
	s.Int(&cfg.Receiver.MaxInFlight, "receiver-max-in-flight", "RECEIVER_MAX_IN_FLIGHT", "pushes handled at once; more are answered 429")
	bindProcess(s, &proc)
	// Bound with their groups, refused in serve: not in its help.
	for _, name := range serveRefused {
		_ = cmd.Flags().MarkHidden(name) // each is bound above
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		envErr := s.ApplyEnv(lookup)
		cfg.Consumer.Topic = pcfg.Topic
		if cfg.Schedule.MaxJitter == 0 {
			cfg.Schedule.MaxJitter = schedule.NoJitter
		}
		cfg.Runs = mc.runConfig(pcfg)
		cfg.RunsRetention = mc.retention
		cfg.Notify = ncfg
		var tzErr error
		if timeZone != "" {
			loc, err := time.LoadLocation(timeZone)
			if err != nil {
				tzErr = setting.Invalid("schedule-time-zone", timeZone, "an IANA time zone such as Europe/Paris")
			}
			cfg.Schedule.Location = loc
		}
		err := errors.Join(envErr, tzErr,
			refuseFlags(cmd, "nothing with serve (each mapping says it)", serveRefused[:2]...),
			refuseFlags(cmd, "nothing with serve (the stored destinations give every prefix)", serveRefused[2:]...),
			kc.Validate(), mc.validate(), cfg.Validate(), proc.Validate(), telemetry.CheckEnv(lookup))
		if err != nil {
			return usage(s, err)
		}
		return failed(s, app.Serve(cmd.Context(), proc, lookup, kc, mc.redis, mc.store, cfg, cmd.ErrOrStderr()))
	}
	return cmd
}
