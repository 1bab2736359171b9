package kafkax

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestKeyHashPartitionsAsKafkaHash: keyHash puts every message where
// kafka.Hash does, whether its key starts as the last one did or not.
func TestKeyHashPartitionsAsKafkaHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomKey := func() []byte {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.IntN(256))
			if rng.IntN(8) == 0 {
				k[i] = keySeparator
			}
		}
		return k
	}
	member := func(segment, i int) []byte {
		return fmt.Appendf(nil, "production\x1fsegment-%d\x1fuser\x1fuser-%d@example.com", segment, i)
	}
	for _, tc := range []struct {
		name string
		key  func(i int) []byte
	}{
		{"the members of one segment", func(i int) []byte { return member(1, i) }},
		{"the members of segments in turn", func(i int) []byte { return member(i%3, i) }},
		{"keys with separators in the context key", func(i int) []byte { return fmt.Appendf(member(2, i), "\x1f%d", i%5) }},
		{"keys without a separator", func(i int) []byte { return fmt.Appendf(nil, "key-%d", i) }},
		{"empty keys", func(int) []byte { return []byte{} }},
		{"random keys", func(int) []byte { return randomKey() }},
		{"nil keys (round-robin)", func(int) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 3, 12, 100} {
				partitions := make([]int, n)
				for i := range partitions {
					partitions[i] = i
				}
				var kh keyHash
				var want kafka.Hash
				for i := range 2000 {
					msg := kafka.Message{Key: tc.key(i)}
					if got, w := kh.Balance(msg, partitions...), want.Balance(msg, partitions...); got != w {
						t.Fatalf("%d partitions, key %q: partition %d, kafka.Hash's %d", n, msg.Key, got, w)
					}
				}
			}
		})
	}
}

func BenchmarkKeyHash(b *testing.B) {
	partitions := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	msg := kafka.Message{Key: []byte("production\x1famplitude-7khm89cz\x1fuser\x1fuser-00001234@example.com")}
	for _, bc := range []struct {
		name string
		b    kafka.Balancer
	}{{"kafka.Hash", &kafka.Hash{}}, {"keyHash", &keyHash{}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.b.Balance(msg, partitions...)
			}
		})
	}
}
