// Package receiver accepts partner pushes of cohort membership the way
// LaunchDarkly's synced-segment API does, so a partner configured for
// LaunchDarkly can point at cohortsync instead, and publishes them as
// membership events.
//
// # Parsers as data
//
// Each partner is one Declaration: JSON pointers into the request body for
// the environment, the cohort (id, name, URL), the context kind, the member
// arrays and the member id, and the rule telling adds from removes
// (BooleanMembership, AddRemoveArrays or ArrayInclusion with an action
// matcher), as the partner's manifest in LaunchDarkly's integration
// framework declares it. One generic parser applies a declaration to a
// body; a new partner is one more declaration. Builtin holds Amplitude,
// Twilio Segment, Census, RudderStack, Heap, Hightouch, Fulcrum, Sumatra,
// Tealium and Zeotap. Amplitude's cohort webhook (a generic webhook
// destination, which names no environment) has its own small parser.
//
// Tealium's matcher ^(add_member|remove_member)$ and Zeotap's later
// ^(members|add_members|remove_members)$ also match their remove action:
// taken literally, a removal would add. Their declarations add a
// RemoveMatcher, checked first, so remove_member and remove_members remove.
//
// # What a batch means
//
//   - The segment key is "<integration>-<cohort id>" (Amplitude's webhook
//     feeds the same segment as Amplitude's push: "amplitude-<cohort id>"),
//     generation 1, unless a stored push mapping claims the integration and
//     cohort for the destination (catalog.Mapping.PushTarget): then its
//     segment, generation and context kind, and 409 while it is paused;
//     otherwise the context kind is the body's, default "user".
//   - Within one batch, a key named twice takes its last occurrence in a
//     member array; between a batch's add and remove arrays, the removal
//     wins.
//   - Members without a usable key (missing, not a string or number, empty,
//     longer than schema.MaxKeyBytes, or without a boolean membership) are
//     excluded with a reason, like a CSV's excluded rows, and the rest of
//     the batch applies. An exclusion's row is the member's position in the
//     batch, an add array's members counted before a remove array's.
//   - With a History, every accepted batch (answered 204) is a run of the
//     run history, trigger "push", under the id its events carry, with its
//     counts and its exclusions: recorded in the background after the 204
//     (Close waits for it), a failure logged and counted, never the batch's.
//     Refused requests are not runs.
//   - Across batches the rule is arrival order: the receiver takes the
//     batch's sequence numbers from the segment's shared allocator
//     (segmentlease.SeqAllocator) when the batch arrives, and the consumer
//     keeps, per membership, the event with the highest number. So a later
//     push, pull or CSV run of the segment always orders after an earlier
//     one, whichever replica took it.
//   - Where the partner says when it computed a batch (Amplitude's cohort
//     webhooks: computed_time), the rule is per key, last computed wins:
//     the receiver records in the control Redis, per segment and key, the
//     computed_time of the last change it accepted (for DedupTTL after the
//     segment's last webhook), and drops a change whose key a batch
//     computed later already changed. So an enter and an exit delivered in
//     the wrong order end as the exit. Two deliveries of one key handled
//     at the same moment by two replicas may still be numbered in arrival
//     order.
//   - Duplicates: re-sending a batch publishes the same changes again with
//     new numbers, which leaves the member set as it was unless an opposite
//     change of the same key was accepted in between. Amplitude's webhook
//     carries a message_id: a delivery whose message_id was already
//     accepted (acknowledged by Kafka) within DedupTTL is answered 204
//     without publishing, so its retries cannot undo a later change.
//     LaunchDarkly-style partners send no message id or timestamp: a
//     partner's retry of a batch arriving after a newer opposite batch wins,
//     as it would at LaunchDarkly. Partners retry only batches that were
//     not answered 204, and the receiver answers 204 only after Kafka
//     acknowledged every event of the batch.
//
// # HTTP
//
// POST /api/v2/segment-targets/{integrationKey} takes the partners'
// bodies; POST /api/v2/amplitude-cohort-webhooks/{environment} takes
// Amplitude's cohort webhooks. The environment is the destination whose
// client_side_id, or else name, equals the body's (or URL's) environment
// id. Every request carries the destination's token (Authorization:
// <token>, or Bearer <token>), stored as its SHA-256 in the control Redis
// (catalogstore) and compared in constant time: 401 without a token or
// with one of no destination, 403 with another destination's. Answers:
// 204 after Kafka acknowledged the events; 400 with a JSON body naming the
// field; 404 for an unknown integration; 413 over MaxBodyBytes (refused
// before parsing); 415 for a content type other than JSON; 429 with
// Retry-After when MaxInFlight requests are being handled or Kafka or the
// control Redis fails transiently; 500 only for the receiver's own
// permanent failures, never for bad input.
package receiver
