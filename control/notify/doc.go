// Package notify tells people when a run of a mapping ends: each mapping
// names, in the catalog (catalog.Notify), an HTTP webhook and email
// recipients and the events they want (finished, failed, refused by a
// guard).
//
// A webhook gets a JSON summary of the run, POSTed with an HMAC-SHA256
// signature over a timestamp and the body (Cohortsync-Signature:
// t=<unix>,v1=<hex>), so that a receiver can tell cohortsync's requests
// from others and reject replays, and a delivery id (Cohortsync-Delivery)
// that stays the same across retries, so that it can drop duplicates.
// Network errors, 408, 429 and 5xx are retried with backoff (honouring
// Retry-After) within a bounded time; any other answer is final.
//
// Email goes through one SMTP server per process (SMTPConfig), over
// STARTTLS (required unless turned off) with AUTH PLAIN, as a plain-text
// summary saying how to download the run's exclusions.
//
// Deliveries never hold up a run: a Notifier queues them (a bounded
// queue; a full one drops the notification, logged and counted) for its
// workers, and Close waits a bounded time for what is queued and in
// flight. Every delivery that ends is recorded with its run (attempts,
// status, error) where `cohortsync runs show` prints it.
package notify
