// Command producer is the command-line entry of package producer:
//
//	producer sync --env ENV --segment SEGMENT --csv FILE [flags]
//
// SIGINT and SIGTERM cancel the sync; it stops at the next batch, waits for
// writes in flight, and leaves the segment's state so that the next sync
// finishes the job.
package main
