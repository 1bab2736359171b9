// Package csvhttp is the source of a mapping whose cohort CSV is published
// at an http(s) URL (an export a job writes to object storage, a partner's
// download link): it fetches the file and streams it through the same
// parser as a local CSV, never holding it in memory.
//
// Getting the response is retried with the project's backoff (network
// errors, 408, 429 and 5xx, waiting at least what Retry-After asks); other
// 4xx are reported at once. Once the body streams, a failure fails the
// read: members were already emitted, and a partial snapshot must never be
// committed. Credentials and query strings (presigned URLs carry their
// signature there) are redacted from every name and error.
package csvhttp
