// Package keyspace holds operations on a whole prefix of a Redis keyspace,
// standalone or Cluster: what tests and benchmarks need to clean up the keys
// of their own prefix, kept apart from internal/redisx (connections) so
// that pkg/testenv can use it without an import cycle.
package keyspace
