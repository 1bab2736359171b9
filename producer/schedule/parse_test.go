package schedule

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestParseStateOfAShortReply: a reply without its four fields (a
// connection broken during the pipeline) is an error, not a panic that
// stops serve.
func TestParseStateOfAShortReply(t *testing.T) {
	_, err := parseState(redis.NewSliceResult(nil, nil), redis.NewStringResult("", redis.Nil))
	if err == nil || !strings.Contains(err.Error(), "answered 0 values") {
		t.Fatalf("parseState of an empty reply = %v", err)
	}
	st, err := parseState(redis.NewSliceResult([]any{"s1", nil, "2", nil}, nil), redis.NewStringResult("", redis.Nil))
	if err != nil || st.done != "s1" || st.attempts != 2 {
		t.Fatalf("parseState of a full reply = %+v, %v", st, err)
	}
}
