// Package chaos holds the fault-injection suite behind RELIABILITY.md: the
// cohortsync binary runs as real processes (sync, consume) against Kafka and
// Redis while the tests kill them with SIGKILL at random points, restart
// Redis mid-apply, send SIGTERM during a large apply and feed the topic
// poison messages; an independent oracle (the cohort files themselves)
// then checks that Redis holds exactly the expected members, in
// LaunchDarkly's layout and in cohortsync's member index, nothing lost and
// nothing left over.
//
// It runs against the real broker and redis-server only (each test starts a
// redis-server of its own, with fsync'd persistence, to restart it; the
// broker rows a broker of their own, to kill it): the short form in make
// test's second phase, the full form (larger cohorts, more kills, 15 s
// broker outages) with COHORTSYNC_CHAOS=full (make chaos). Each scenario
// is one row of RELIABILITY.md, which the full form writes from what the
// rows measured (COHORTSYNC_CHAOS_REPORT names the file; report_test.go):
// members expected and observed, lost, doubled, time to recover.
// COHORTSYNC_CHAOS_LOGS=1 logs every process's output at the end of its
// row.
package chaos
