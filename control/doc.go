// Package control is the control plane: what should be synced where
// (catalog), and later the runs, the API and the console built on it. It
// sits beside the data path (source → events → Kafka → apply → Redis) and
// never inside it: the producer and the consumer are told what to do by the
// control plane, and never import it back.
package control
