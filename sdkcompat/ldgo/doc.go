// Package ldgo evaluates flags with LaunchDarkly's Go server SDK (v7) against
// a Big Segments Redis, as a second opinion beside the Node SDK that package
// sdkcompat runs.
//
// LaunchDarkly's own Go Redis integration for Big Segments is not available
// from the module proxy here, so Store is a small subsystems.BigSegmentStore
// of ours over go-redis. It reads only what the documented layout says SDK
// stores read (GET of the sync time, SMEMBERS of the include and exclude sets
// under the hash the SDK computes); everything else — hashing, refs,
// include-over-exclude, staleness, caching, evaluation — is the SDK's.
package ldgo
