package redisx

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/redisnodes"
)

// ServerCPU returns the CPU time (user and system, INFO cpu) the servers
// behind rdb have used since they started, summed over a Cluster's
// masters. A benchmark takes it before and after a run: the servers' CPU
// per event moves much less with a shared machine's other load than the
// rate does. It fails for a server that does not report it (miniredis).
func ServerCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	var (
		mu    sync.Mutex
		total time.Duration
	)
	one := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		seen := 0
		for line := range strings.SplitSeq(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k != "used_cpu_user" && k != "used_cpu_sys" {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", c.Options().Addr, k, err)
			}
			seen++
			mu.Lock()
			total += time.Duration(f * float64(time.Second))
			mu.Unlock()
		}
		if seen != 2 {
			return fmt.Errorf("%s: no used_cpu_user and used_cpu_sys", c.Options().Addr)
		}
		return nil
	}
	if err := redisnodes.EachMaster(ctx, rdb, one); err != nil {
		return total, fmt.Errorf("INFO cpu: %w", err)
	}
	return total, nil
}
