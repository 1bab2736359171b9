// Package app wires a cohortsync process: it builds the clients and
// telemetry every part shares (Kafka settings, Redis, logger) once, hands
// them to the parts (producer, consumer), runs them and tears everything
// down in reverse order. Only cmd/ and this package construct clients; the
// parts receive them.
package app
