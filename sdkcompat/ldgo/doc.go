// Package ldgo evaluates flags with LaunchDarkly's Go server SDK (v7) against
// a Big Segments Redis, as a second opinion beside the Node SDK that package
// sdkcompat runs.
//
// LaunchDarkly's own Go Redis integration for Big Segments is not available
// from the module proxy here, so the SDK reads Redis through pkg/ldstore, a
// small subsystems.BigSegmentStore of ours over go-redis that reads only what
// the documented layout says SDK stores read; everything else is the SDK's.
package ldgo
