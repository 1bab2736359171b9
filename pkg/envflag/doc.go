// Package envflag gives every command-line flag an environment-variable twin
// (--kafka-brokers / KAFKA_BROKERS), so the same binary is configured by flags
// on a laptop and by environment in a container, with one source of truth for
// names, defaults and help text.
package envflag
