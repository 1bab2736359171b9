// Package csvfile is the Source of a cohort CSV export (pkg/cohortcsv: plain
// or gzip, Amplitude's layout and files shaped like it), read from a file
// or from any reader.
package csvfile
