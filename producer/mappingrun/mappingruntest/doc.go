// Package mappingruntest gives tests the event path that mapping runs,
// list-segment edits and erasures write through, built one way
// everywhere: the producer config of a test's own topic (created on the
// test's Kafka), the leases, sequence counters and erased set on the
// test's Redis with a publisher for edits (Writers), and a consumer
// applying the topic until the test ends (Consume).
//
// It does not import mappingrun, so that mappingrun's own tests can use
// it too; a test builds its Runner from Producer and Writers.Lease.
package mappingruntest
