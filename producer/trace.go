package producer

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the producer's tracer.
const tracerName = "github.com/cohortsync/cohortsync/producer"

// startSyncSpan starts a run's "sync" span in cfg.TracerProvider (none:
// nothing is recorded); its context goes into every event, so the
// consumer's batch spans link to it. end records the outcome and ends it.
func startSyncSpan(ctx context.Context, cfg Config, req SyncRequest) (context.Context, func(Summary, error)) {
	if cfg.TracerProvider == nil {
		return ctx, func(Summary, error) {}
	}
	ctx, span := cfg.TracerProvider.Tracer(tracerName).Start(ctx, "sync",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("cohortsync.env", req.Env),
			attribute.String("cohortsync.segment", req.Segment),
		))
	return ctx, func(sum Summary, err error) {
		span.SetAttributes(attribute.String("cohortsync.run", sum.Run), attribute.String("messaging.destination.name", sum.Topic))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
