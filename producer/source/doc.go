// Package source declares what a sync reads a snapshot from: a Source
// yields the member keys of one cohort snapshot, and the records it had to
// leave out, with a reason each. The sync does not know where the members
// come from: a CSV export (package csvfile) today, the Amplitude API next.
package source
