// Package ldstore is a Big Segments store for LaunchDarkly's Go server SDK
// (github.com/launchdarkly/go-server-sdk/v7) over go-redis, reading the
// layout cohortsync writes (docs/bigsegments-redis.md) from a standalone
// Redis or a Redis Cluster.
//
// LaunchDarkly's own Go Redis integration for Big Segments is built on
// redigo and speaks to a single server; this store takes any
// redis.UniversalClient the application already has. It reads only what the
// documented layout says SDK stores read (GET of the sync time, SMEMBERS of
// the include and exclude sets under the hash the SDK computes); everything
// else (hashing, refs, include-over-exclude, staleness, caching, evaluation)
// is the SDK's.
//
// Plug it into the SDK's configuration with ldcomponents.BigSegments:
//
//	store := ldstore.NewStore(ctx, rdb, "launchdarkly")
//	config.BigSegments = ldcomponents.BigSegments(store.Configurer())
//
// The SDK's store interface passes no context, so the one given to NewStore
// bounds every read (each also within DefaultTimeout); cancel it when the
// SDK client is closed. The Redis client belongs to the caller.
package ldstore
