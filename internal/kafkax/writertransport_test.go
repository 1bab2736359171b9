package kafkax

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
)

// countingTransport answers every request with a new metadata response
// holding topic (with errorCode), or with err, and counts the requests.
type countingTransport struct {
	calls     int
	errorCode int16
	err       error
}

func (c *countingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	m, ok := req.(*metadata.Request)
	if !ok {
		return &produce.Response{}, nil
	}
	res := &metadata.Response{}
	for _, name := range m.TopicNames {
		res.Topics = append(res.Topics, metadata.ResponseTopic{Name: name, ErrorCode: c.errorCode,
			Partitions: make([]metadata.ResponsePartition, 3)})
	}
	return res, nil
}

func TestWriterTransportReusesOnlyItsTopicsGoodMetadata(t *testing.T) {
	const topic = "members"
	forTopic := func() kafka.Request { return &metadata.Request{TopicNames: []string{topic}} }
	for _, tc := range []struct {
		name      string
		req       func() kafka.Request
		errorCode int16
		err       error
		ttl       time.Duration
		pause     time.Duration // between requests
		wantCalls int           // of the shared transport, for 3 requests
	}{
		{name: "the topic's metadata is asked once within the TTL", req: forTopic, ttl: time.Minute, wantCalls: 1},
		{name: "expired metadata is asked again", req: forTopic, ttl: time.Millisecond, pause: 100 * time.Millisecond, wantCalls: 3},
		{name: "an answer with a topic error is not kept", req: forTopic, errorCode: int16(kafka.UnknownTopicOrPartition), ttl: time.Minute, wantCalls: 3},
		{name: "a failed request is not kept", req: forTopic, err: kafka.BrokerNotAvailable, ttl: time.Minute, wantCalls: 3},
		{name: "another topic's metadata passes through", ttl: time.Minute, wantCalls: 3,
			req: func() kafka.Request { return &metadata.Request{TopicNames: []string{"other"}} }},
		{name: "metadata of more topics passes through", ttl: time.Minute, wantCalls: 3,
			req: func() kafka.Request { return &metadata.Request{TopicNames: []string{topic, "other"}} }},
		{name: "a request that may create the topic passes through", ttl: time.Minute, wantCalls: 3,
			req: func() kafka.Request {
				return &metadata.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: true}
			}},
		{name: "other requests pass through", ttl: time.Minute, wantCalls: 3,
			req: func() kafka.Request { return &produce.Request{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &countingTransport{errorCode: tc.errorCode, err: tc.err}
			wt := newWriterTransport(next, topic)
			wt.ttl = tc.ttl
			for i := range 3 {
				if i > 0 {
					time.Sleep(tc.pause)
				}
				req := tc.req()
				res, err := wt.RoundTrip(context.Background(), kafka.TCP("127.0.0.1:9092"), req)
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				m, ok := req.(*metadata.Request)
				if err != nil || !ok {
					continue
				}
				// The answer, kept or not, is the one for the request.
				topics := res.(*metadata.Response).Topics
				if len(topics) != len(m.TopicNames) || topics[0].Name != m.TopicNames[0] ||
					topics[0].ErrorCode != tc.errorCode || len(topics[0].Partitions) != 3 {
					t.Fatalf("answer %+v to %+v", topics, m)
				}
			}
			if next.calls != tc.wantCalls {
				t.Fatalf("%d requests reached the shared transport, want %d", next.calls, tc.wantCalls)
			}
		})
	}
}
