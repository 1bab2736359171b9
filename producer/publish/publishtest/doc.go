// Package publishtest gives tests a publish.Config and the kafkax.Factory
// of the test's Kafka (pkg/testenv: an in-process kfake, or the real broker
// of `make test`), so that every package publishing in its tests targets it
// the same way.
package publishtest
