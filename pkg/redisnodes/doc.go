// Package redisnodes reaches every server that holds a Redis deployment's
// keys, whether it is one server or a Cluster: work that goes server by
// server (SCAN, INFO) rather than key by key, and so cannot go through a
// Cluster client's routing.
package redisnodes
