package kafkax

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
)

// writerMetadataTTL is how long a Writer's transport reuses the metadata of
// its topic. The shared transport's own cache may already be metadataTTL
// old; this adds at most a second to how late a Writer sees a topic's new
// partition count.
const writerMetadataTTL = time.Second

// writerTransport is the transport of a Writer: the shared one (errors
// explained), except that it answers the Writer's metadata request for its
// own topic from the last answer for up to ttl. kafka-go's Writer makes
// that request for every message it writes, to learn the partition count
// its balancer needs; even served from the shared transport's cache, each
// costs a lock, selects and four allocations, a quarter of a message's CPU
// in the producer's profile (issue 12). Every other request, and a
// metadata answer with an error, goes to the shared transport as before.
type writerTransport struct {
	next   kafka.RoundTripper
	topic  string
	ttl    time.Duration
	cached atomic.Pointer[cachedMetadata]
}

// cachedMetadata is a metadata answer for the Writer's topic, and whether
// it expired. kafka-go only reads the answers it gets, so one is shared by
// the calls that reuse it. A timer marks it expired: reading the clock on
// every call cost 3% of a message's CPU.
type cachedMetadata struct {
	res     *metadata.Response
	expired atomic.Bool
}

func newWriterTransport(next kafka.RoundTripper, topic string) *writerTransport {
	return &writerTransport{next: next, topic: topic, ttl: writerMetadataTTL}
}

func (t *writerTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	m, ok := req.(*metadata.Request)
	// A request that may create a topic, or asks of other topics, is not
	// the one answered from the cache.
	if !ok || m.AllowAutoTopicCreation || len(m.TopicNames) != 1 || m.TopicNames[0] != t.topic {
		return t.next.RoundTrip(ctx, addr, req)
	}
	if c := t.cached.Load(); c != nil && !c.expired.Load() {
		return c.res, nil
	}
	res, err := t.next.RoundTrip(ctx, addr, req)
	if err != nil {
		return res, err
	}
	// An answer naming an error (such as an unknown topic) is not kept:
	// every call still sees it until the topic is there.
	if r, ok := res.(*metadata.Response); ok && len(r.Topics) == 1 && r.Topics[0].Name == t.topic && r.Topics[0].ErrorCode == 0 {
		c := &cachedMetadata{res: r}
		time.AfterFunc(t.ttl, func() { c.expired.Store(true) })
		t.cached.Store(c)
	}
	return res, nil
}
