// Package bigsegments names the Redis keys of LaunchDarkly's Big Segments
// layout, which unmodified LaunchDarkly SDKs read, and the keys cohortsync keeps
// beside them (member index and per-segment metadata).
//
// The layout facts (hash, key names, millisecond sync time) are LaunchDarkly's;
// they live in one package so that the writer (pkg/segmentstore), the readers (demo,
// tests, status tools) and the SDK compatibility tests cannot drift apart.
//
// cohortsync's own keys sit under "<prefix>:cohortsync:", a name the SDKs never
// read and that cannot collide with theirs. Per-segment keys put the segment ref
// in a Redis Cluster hash tag so that a segment's member index and metadata
// share a slot and can be updated in one transaction or script.
package bigsegments
