// Package catalog is the model of what cohortsync keeps in sync: the
// destinations membership is written to (a Redis and a key prefix, one per
// LaunchDarkly environment) and the mappings from a source cohort to a
// segment in one or more of them, with their schedules and guards.
//
// A team declares the catalog in a file (mappings.yaml) it reviews like code,
// so the decoder is strict and exhaustive: an unknown field is refused, not
// ignored, because a misspelt "max_shrnk" silently turning a guard off is
// worse than an error; and every problem is reported at once, each naming its
// file line, entry and field, so one edit fixes them all instead of one
// apply per typo. It also refuses, at configuration time, two destinations
// that would write the same Redis keys (the same server and prefix) unless
// both declare the sharing deliberate: two environments silently sharing a
// prefix remove each other's members.
//
// A destination's Redis password is never in the file (nor in the store it
// is copied to): the file names the environment variable or file it is read
// from (a SecretRef), and Destination.RedisConfig reads it when connecting.
//
// The decoded Catalog is normalised (defaults applied, entries sorted by
// name) and each Mapping and Destination has a stable encoded form and a
// content hash, so that storing the catalog can be idempotent: applying an
// unchanged file changes nothing.
package catalog
