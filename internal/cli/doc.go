// Package cli is the cohortsync command line: one cobra command per
// subcommand, every setting a flag with an environment twin. It parses and
// validates, then hands the settings to internal/app, which does the work;
// no library package sees a flag or os.Args.
//
// Environment twins follow one rule: settings of the process and of the
// connections every part shares (Kafka, Redis, HTTP, logging) have plain
// names (KAFKA_BROKERS, REDIS_URL); a part's own settings carry the part's
// prefix (CONSUMER_BATCH_SIZE, PRODUCER_BATCH_SIZE), and the arguments of
// one sync SYNC_ (SYNC_SEGMENT). So no variable means two things in two
// commands.
package cli
