// Package rewind moves a stopped consumer group back to the start of the
// membership topic, so that its next consumers replay the
// topic into Redis: the rebuild after Redis lost its data, or the repair
// of a store someone wrote by hand. Events are idempotent, so destinations
// that kept their data are left as they are by the replay.
//
// It refuses while the group has members: a running consumer would commit
// its own offsets over the rewind.
package rewind
