// Package httpserver is the process's one HTTP server: the consumer's
// /metrics, /healthz and /readyz today, the admin API and the console
// later, all on one listener, so that a part never opens a port of its
// own and a deployment exposes one.
package httpserver
