// Package mappingrun runs one sync of a stored mapping (control/catalog):
// its cohort read from its source and synced into its segment in each of
// its destinations, safely with several replicas.
//
// Each destination is a segment of its own (its environment's), synced
// with the producer under a Redis lease shared by every replica
// (internal/segmentlease) and with shared state (snapshot.WithSharedState):
// sequence numbers come from the shared counter, and a committed snapshot
// that another replica moved past, or that a lost disk took, is rebuilt
// from what the destination's Redis holds (segmentstore.Rebuilder). The
// state directory is then only a cache.
//
// Sources: a CSV path or http(s) URL (csvfile, csvhttp), or an Amplitude
// cohort (package amplitude) exported from the mapping's project, found
// through Destinations when it also implements AmplitudeProjects, with the
// project's keys read when the run starts. Each destination reads the
// source anew: a mapping fanned out to two destinations exports its
// Amplitude cohort twice.
//
// Both the scheduler of `cohortsync serve` and `cohortsync sync --mapping`
// call Run; neither needs to know a mapping's source or destinations.
package mappingrun
