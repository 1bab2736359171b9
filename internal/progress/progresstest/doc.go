// Package progresstest gives tests a meter they move by hand: a
// progress.Reader (what internal/progress shows and internal/app records
// of a run) whose reading the test sets, where a producer.Meter only moves
// as a real sync does.
package progresstest
