// Package cohortcsv reads cohort snapshots exported as CSV (Amplitude's
// Behavioral Cohorts export and files shaped like it) and yields one context
// key per member row.
//
// The reader accepts the files as they really arrive: RFC 4180 with a header
// row, plain or gzip (recognised by its magic bytes, not by the file name),
// with or without a UTF-8 byte order mark, CRLF or LF line ends, and quoted
// fields that contain separators, quotes or newlines.
//
// Rows that cannot become a context key are excluded, never silently dropped:
// each one is passed to the caller with its position and a stable reason
// (see the Reason constants), and counted in Stats. A row that breaks the CSV
// grammar on its own line is excluded and reading goes on with the next line
// (encoding/csv resumes at the next physical line). A quoted field that is
// never properly closed is different: encoding/csv then reads the following
// lines as part of that field, so the rows in between are lost and their
// members would look removed. Read refuses such input with a *ResyncError
// instead of guessing.
//
// Most rows of a real export are plain: the header's number of fields, and
// no quote anywhere or quotes only around whole fields that hold none (as
// from exporters that quote every field). Read splits those itself and keeps their keys, packed
// together, in one string per block of rows, so the usual row costs no
// allocation; any other line (a quote, a wrong field count, a line longer than
// the read buffer, the last line without a line end, a read error) goes to
// encoding/csv, so the results are those of encoding/csv for every record.
//
// Duplicate keys are not detected here: the snapshot sort does that for free.
package cohortcsv
