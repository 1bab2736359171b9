package bigsegments

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// DefaultPrefix is the prefix LaunchDarkly SDKs use when none is configured.
const DefaultPrefix = "launchdarkly"

// HashContextKey returns the SDKs' hash of a context key: standard base64 (with
// padding) of the SHA-256 of its UTF-8 bytes. The context kind is not hashed.
func HashContextKey(contextKey string) string {
	sum := sha256.Sum256([]byte(contextKey))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// AppendIncludeKey appends "<prefix>:big_segment_include:<hash of contextKey>"
// to dst without intermediate allocations (once dst has room); the consumer
// builds one per event. The key's bytes are hashed from dst's spare room:
// a []byte(contextKey) conversion handed to the hash escapes, and cost an
// allocation per event.
func AppendIncludeKey(dst []byte, prefix, contextKey string) []byte {
	n := len(dst)
	dst = append(dst, contextKey...)
	sum := sha256.Sum256(dst[n:])
	dst = dst[:n]
	dst = append(dst, prefix...)
	dst = append(dst, ":big_segment_include:"...)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// Ref is the segment reference stored in include and exclude sets:
// "<segmentKey>.g<generation>". Bumping the generation makes every old ref
// stop matching at once.
func Ref(segment string, generation int) string {
	return segment + ".g" + strconv.Itoa(generation)
}

// IncludeKey is the set of segment refs a context is included in.
func IncludeKey(prefix, contextKey string) string {
	return IncludeKeyForHash(prefix, HashContextKey(contextKey))
}

// IncludeKeyForHash and ExcludeKeyForHash name the sets from an already
// hashed context key, which is what an SDK store is handed.
func IncludeKeyForHash(prefix, hash string) string { return prefix + ":big_segment_include:" + hash }

// ExcludeKeyForHash is the exclude set of an already hashed context key;
// see IncludeKeyForHash.
func ExcludeKeyForHash(prefix, hash string) string { return prefix + ":big_segment_exclude:" + hash }

// ExcludeKey is the set of segment refs a context is excluded from. cohortsync
// never writes it (synced segments only include) but readers consult it.
func ExcludeKey(prefix, contextKey string) string {
	return ExcludeKeyForHash(prefix, HashContextKey(contextKey))
}

// SyncTimeKey holds the unix time in milliseconds up to which the store is
// known to be current.
func SyncTimeKey(prefix string) string { return prefix + ":big_segments_synchronized_on" }

// MembersKey is cohortsync's index of the raw context keys included in
// ref. The SDKs cannot list a segment (they only see hashes); this index
// can, and its length is the member count. It is a hash from each context
// key to the sequence number (decimal) of the event that added it, kept
// while the key stays in (an add of a key already in does not change it):
// what "since which run" is read from (RunsKey maps the number to its run).
// A segment written before since-tracking holds a set of the context keys
// there instead, and keeps that form (readers read both; the value
// SinceUnknown in a hash means the same, "joined before since-tracking").
func MembersKey(prefix, ref string) string { return prefix + ":cohortsync:{" + ref + "}:members" }

// SinceUnknown is the sequence number of a member whose joining event is
// not known: it joined before since-tracking. Sequence numbers start at 1.
const SinceUnknown = "0"

// RunsKey is cohortsync's index of where each run starts in ref's
// sequence numbers: a sorted set, every score 0, of members
// "<seq, 20 digits zero-padded>:<run>", seq the lowest of that run the
// consumer had applied when it wrote the entry: about one per run (each
// apply loop of a consumer writes a run's entry again only when it sees a
// lower seq of it, or after it restarts). Runs number a segment's events in ranges that
// never overlap, so the run of a sequence number s is the one of the
// greatest member not above "<s>;" (ZREVRANGEBYLEX): exact for any uint64,
// where a score (a double) would round above 2^53.
func RunsKey(prefix, ref string) string { return prefix + ":cohortsync:{" + ref + "}:runs" }

// RunsEntry is the member of RunsKey for run starting at seq.
func RunsEntry(seq uint64, run string) string { return PadSeq(seq) + ":" + run }

// PadSeq formats seq in 20 digits, zero-padded, so that byte order is
// numeric order.
func PadSeq(seq uint64) string {
	const width = 20
	s := strconv.FormatUint(seq, 10)
	return strings.Repeat("0", width-len(s)) + s
}

// StoreIDKey holds a random id the consumer writes once into a store it
// applies to and expects to find there from then on: a store that lost it
// (FLUSHALL, a Redis replaced by an empty one, a failover to an empty
// replica) lost the segments too, and must not be stamped current.
func StoreIDKey(prefix string) string { return prefix + ":cohortsync:store_id" }

// StoreLostKey records when a consumer found StoreIDKey gone: later
// consumers do not claim the store again (a restarted process would
// otherwise forget the loss) until an operator deletes it after the
// rebuild (README, "Redis lost its data").
func StoreLostKey(prefix string) string { return prefix + ":cohortsync:store_lost" }

// MetaKey is cohortsync's hash of per-segment metadata (see the Meta* fields).
func MetaKey(prefix, ref string) string { return prefix + ":cohortsync:{" + ref + "}:meta" }

// SegmentsKey is cohortsync's set of every segment ref written under prefix
// (the consumer adds a ref the first time it applies one of its events), so
// that the segments of a store are listed with SSCAN of one small set
// rather than a SCAN of the keyspace.
func SegmentsKey(prefix string) string { return prefix + ":cohortsync:segments" }

// ParseRef splits a segment ref "<segmentKey>.g<generation>" (see Ref);
// ok is false for anything Ref cannot have made.
func ParseRef(ref string) (segment string, generation int, ok bool) {
	i := strings.LastIndex(ref, ".g")
	if i <= 0 {
		return "", 0, false
	}
	g, err := strconv.Atoi(ref[i+2:])
	if err != nil || g < 1 || strconv.Itoa(g) != ref[i+2:] {
		return "", 0, false
	}
	return ref[:i], g, true
}

// Fields of MetaKey.
const (
	MetaLastRun     = "last_run"     // the sync run of the event of the highest applied sequence number
	MetaLastSeq     = "last_seq"     // the highest applied sequence number
	MetaLastApplied = "last_applied" // unix ms when the last batch with events of the segment was applied
	MetaContextKind = "context_kind" // the context kind of the segment's members
)

// UnixMillis formats t as the SDKs expect the sync time.
func UnixMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
