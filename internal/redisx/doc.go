// Package redisx opens the Redis client cohortsync's components share, from
// one of two settings: a standalone server URL or the masters of a Redis
// Cluster. Both yield a redis.UniversalClient, so the writers and readers of
// the Big Segments layout are written once and run on either deployment.
//
// The pool and timeout defaults are chosen for large pipelines (thousands of
// commands per round trip) rather than go-redis's defaults for single
// commands.
package redisx
