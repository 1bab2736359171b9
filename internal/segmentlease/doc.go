// Package segmentlease gives replicas of cohortsync that share segments the
// two things a snapshot.Store needs to sync a segment safely from any of
// them, kept in Redis where every replica sees them: a lease on the segment
// (Locker) and its sequence numbers (SeqAllocator).
//
// The local defaults in package snapshot (flock, and the state file as the
// counter) only exclude processes on one machine and only count on one disk;
// with several `serve` replicas a run must happen once, and numbers must keep
// growing whichever replica reserves them.
//
// A lease is a key holding a fencing token, set only if absent, with a TTL
// the holder renews in the background; a holder that dies or stalls stops
// renewing, the key expires and another replica takes the segment with a
// larger token. Tokens come from a per-segment counter that only grows, so
// "is the lease still mine" is "does the key still hold my token", checked
// before the Store commits.
//
// Keys, all of one segment in one Redis Cluster hash slot (the {…} tag), under
// Config.Prefix (default "cohortsync:control:"), apart from the LaunchDarkly
// Big Segments layout the consumer writes:
//
//	<prefix>{<env>/<segment>/<generation>/<context kind>}:lease  token of the holder, with the lease's TTL
//	<prefix>{<env>/<segment>/<generation>/<context kind>}:fence  last token handed out (INCR)
//	<prefix>{<env>/<segment>/<generation>/<context kind>}:seq    last sequence number reserved
//	<prefix>{erased:<env>}:keys  context keys erased from env → erase receipt (Erased)
//
// where env, segment and context kind are query-escaped (url.QueryEscape), so
// no identifier can end the hash tag or collide with another.
package segmentlease
