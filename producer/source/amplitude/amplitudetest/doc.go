// Package amplitudetest is a fake Amplitude Behavioral Cohorts API for
// tests: an httptest server on loopback that behaves as
// shared/docs/sources.md section 1 documents (Basic auth, the cohort list,
// an export requested with 202, its status polled through 202 "JOB
// INPROGRESS" to 200 "JOB COMPLETED", and the file inline or through a 302
// to a presigned URL that expires with a 403 as S3 answers).
//
// Knobs inject what the real service does on a bad day: 429 with
// Retry-After, 500s, a body cut short, a gzip stream without its end. A
// cohort may be generated (N rows written as they are sent), so a 2M-row
// export streams without being held in memory on either side.
package amplitudetest
