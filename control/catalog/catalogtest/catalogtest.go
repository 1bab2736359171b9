// Package catalogtest gives tests a catalog held in memory, with the
// read methods the control packages declare (List, Destinations,
// Destination), and destinations on a test's Redis.
package catalogtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// Catalog is a catalog held in memory; safe for concurrent use.
type Catalog struct {
	mu       sync.Mutex
	Mappings []catalog.Mapping
	Dests    []catalog.Destination
}

// List returns the mappings.
func (c *Catalog) List(context.Context) ([]catalog.Mapping, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]catalog.Mapping(nil), c.Mappings...), nil
}

// Destinations returns the destinations.
func (c *Catalog) Destinations(context.Context) ([]catalog.Destination, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]catalog.Destination(nil), c.Dests...), nil
}

// Destination returns the destination named name, or an error naming it.
func (c *Catalog) Destination(_ context.Context, name string) (catalog.Destination, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.Dests {
		if d.Name == name {
			return d, nil
		}
	}
	return catalog.Destination{}, fmt.Errorf("destination %q: no such destination", name)
}

// Destination returns a destination named env serving env under prefix
// (a custom prefix).
func Destination(env, prefix string) catalog.Destination {
	return catalog.Destination{Name: env, Environment: env, PrefixMode: catalog.PrefixCustom, CustomPrefix: prefix}
}

// Connector returns a connector giving rdb for every destination.
func Connector(rdb redis.UniversalClient) func(context.Context, catalog.Destination) (redis.UniversalClient, error) {
	return func(context.Context, catalog.Destination) (redis.UniversalClient, error) { return rdb, nil }
}
