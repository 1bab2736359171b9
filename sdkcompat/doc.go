// Package sdkcompat evaluates feature flags with LaunchDarkly's own, unmodified
// server-side SDK against a Big Segments Redis, so that tests can prove that the
// layout cohortsync writes is the layout real SDKs read.
//
// Evaluate runs node/evaluate.js, a small Node.js program that hands one flag
// and one unbounded segment to the Node SDK's file data source and reads
// membership through the SDK's own RedisBigSegmentStore. Nothing of the SDK's
// logic (hashing, key names, generation refs, include/exclude precedence,
// staleness) is re-implemented here: disagreeing with the SDK is what the tests
// are there to catch.
//
// Cases are the layout checks every SDK we test must answer alike (or, where
// SDKs differ, as each one does); package ldgo runs them through LaunchDarkly's
// Go SDK. ClientURL turns a testenv Redis client into the URL the SDK needs, so
// end-to-end tests can evaluate what the consumer wrote.
//
// The Node dependencies are pinned in node/package-lock.json and installed with
// "npm ci --prefix sdkcompat/node" (scripts/test.sh does); node_modules is not
// committed. Evaluate reports a missing install as ErrNotInstalled.
package sdkcompat
