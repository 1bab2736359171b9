package app

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// redisPrintf is go-redis's logger interface.
type redisPrintf interface {
	Printf(ctx context.Context, format string, v ...any)
}

// redisLog is the one logger go-redis is given, once: go-redis keeps it in
// a global written without synchronisation, and a process (or a test) may
// start several commands' parts concurrently; each sets its target here.
var redisLog struct {
	once   sync.Once
	target atomic.Pointer[redisPrintf]
}

type forwardRedisLog struct{}

func (forwardRedisLog) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLog.target.Load(); l != nil {
		(*l).Printf(ctx, format, v...)
	}
}

// setRedisLogger makes l receive go-redis's own log lines.
func setRedisLogger(l redisPrintf) {
	redisLog.target.Store(&l)
	redisLog.once.Do(func() { redis.SetLogger(forwardRedisLog{}) })
}
