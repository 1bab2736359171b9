// Package generation provides what moving a segment to a new generation
// publishes beyond ordinary runs: the Handover that follows the removal of
// the old generation.
//
// A membership's message key has no generation (schema), so on the
// compacted topic a member of both generations N and N+1 keeps only its
// latest event. Removing generation N after N+1 is built makes that the
// removal from N, and a replay of the compacted topic would then miss the
// member in N+1. The Handover republishes every member of N+1 as an add,
// after N's removals, so that each membership's last event is the live
// generation's again. It is a run of N+1 like any other (lease, shared
// sequence numbers, recorded), diffed against an empty snapshot; applying
// its adds changes nothing in Redis.
package generation
