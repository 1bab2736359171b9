// Package amplitude pulls cohorts from Amplitude's Behavioral Cohorts API
// (shared/docs/sources.md section 1): a Client lists a project's cohorts,
// and a Source exports one cohort as a snapshot: it requests the export,
// polls its status, downloads the file (inline, or through a 302 to a
// presigned storage URL, asked again when that URL expired) and streams it
// through pkg/cohortcsv, plain or gzip, never holding it in memory.
//
// The project's limits are respected: at most MaxParallel requests are in
// progress per project (API key) across the whole process, however many
// Clients and Sources share it; 429 waits what Retry-After asks. Network
// errors, 408, 429 and 5xx are retried with the project's backoff
// (internal/retry); other 4xx (401 for wrong credentials, 404 for an
// unknown cohort) are reported at once. A download that fails once members
// were emitted fails the read: a partial snapshot would look like members
// leaving.
//
// The secret key never appears in a name, an error or a log: requests
// carry it in their Authorization header only, and presigned URLs (whose
// query holds a signature) are redacted.
package amplitude
