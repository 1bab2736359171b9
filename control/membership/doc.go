// Package membership answers "which segments is context K in" and "is K in
// segment S, and since which run" for one environment's destination, read
// the way LaunchDarkly's SDKs read it (the include and exclude sets of K's
// hash; included wins) and described like cohortsync segments describes a
// segment (source, owning mapping, generation).
//
// "Since which run" is what the consumer recorded, never a guess: the
// member index holds, per member, the sequence number of the add that let
// it in, written in the same all-or-nothing write as the membership, and
// the segment's run index maps that number to its run
// (segmentstore.JoinedSince). The run history (runstore) adds the run's
// trigger, start and status while it keeps the run (14 days by default). A
// member that joined before since-tracking reads as
// "unknown (before since-tracking)".
//
// It reads only: the catalog, the destination's Redis and the run history.
package membership
