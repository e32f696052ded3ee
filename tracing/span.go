package tracing

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/middleware"
	"github.com/docket-go/docket/scope"
)

// callSpan is the CallSpan of a call whose span records.
type callSpan struct {
	step      *stepState
	span      trace.Span
	ctx       context.Context // the span's context: metrics get exemplars from it
	execution string
}

// attrBufs holds End's attribute buffers: the SDK copies the attributes it
// is given, so the buffer serves the next span.
var attrBufs = sync.Pool{New: func() any { return new([8]attribute.KeyValue) }}

// Link attributes, shared by every link: one attribute each, in which the
// SDK has nothing to deduplicate or truncate, so nothing ever writes them.
var (
	flightLinkAttrs   = []attribute.KeyValue{LinkKindKey.String(LinkFlight)}
	producerLinkAttrs = []attribute.KeyValue{LinkKindKey.String(LinkProducer)}
)

func (c *callSpan) End(out middleware.Outcome) {
	buf := attrBufs.Get().(*[8]attribute.KeyValue)
	attrs := append(buf[:0], ResultKey.String(result(out).String()))
	if c.execution != "" {
		attrs = append(attrs, ExecutionIDKey.String(c.execution))
	}
	if out.Tier != "" {
		attrs = append(attrs, TierKey.String(out.Tier))
	}
	if out.Reason != middleware.ReasonNone {
		attrs = append(attrs, MissReasonKey.String(out.Reason.String()))
	}
	if out.Key.Sum != (keyer.Sum{}) {
		attrs = append(attrs, KeyHashKey.String(hex.EncodeToString(out.Key.Sum[:8])))
	}
	if out.Joined {
		attrs = append(attrs, FlightJoinedKey.Bool(true))
	}
	if out.Waiters > 0 {
		attrs = append(attrs, FlightWaitersKey.Int(out.Waiters))
	}
	if out.Err != nil {
		attrs = append(attrs, errorType(out.Err))
		c.span.SetStatus(codes.Error, errorDescription(out.Err))
	}
	c.span.SetAttributes(attrs...)
	clear(attrs) // drop the strings
	attrBufs.Put(buf)

	own := c.span.SpanContext()
	if out.Joined && out.Flight != nil {
		// The flight's context carries the span of the caller that started
		// it: the span the waiter's result came from.
		if sc := trace.SpanContextFromContext(out.Flight); sc.IsValid() && sc.SpanID() != own.SpanID() {
			c.span.AddLink(trace.Link{SpanContext: sc, Attributes: flightLinkAttrs})
		}
	}
	if sc, ok := originSpan(out.Origin); ok && sc.SpanID() != own.SpanID() {
		c.span.AddLink(trace.Link{SpanContext: sc, Attributes: producerLinkAttrs})
	}
	c.span.End()
	c.step.record(c.ctx, out)
}

// errorType is the error.type attribute of err: the sentinel or type that
// says what failed, with a low cardinality. Docket's own errors are named by
// their package path and name, as semconv.ErrorType names error types.
func errorType(err error) attribute.KeyValue {
	var pe *middleware.PanicError
	switch {
	case errors.As(err, &pe):
		return semconv.ErrorTypeKey.String("github.com/docket-go/docket/middleware.PanicError")
	case errors.Is(err, middleware.ErrGoexit):
		return semconv.ErrorTypeKey.String("github.com/docket-go/docket/middleware.ErrGoexit")
	case errors.Is(err, middleware.ErrStore):
		return semconv.ErrorTypeKey.String("github.com/docket-go/docket/middleware.ErrStore")
	case errors.Is(err, scope.ErrNoExecution):
		return semconv.ErrorTypeKey.String("github.com/docket-go/docket/scope.ErrNoExecution")
	case errors.Is(err, scope.ErrEnded):
		return semconv.ErrorTypeKey.String("github.com/docket-go/docket/scope.ErrEnded")
	case errors.Is(err, context.Canceled):
		return semconv.ErrorTypeKey.String("context.Canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return semconv.ErrorTypeKey.String("context.DeadlineExceeded")
	}
	return semconv.ErrorType(err)
}

// errorDescription is the span status description of err: its message,
// without the stack a PanicError carries (that belongs in logs).
func errorDescription(err error) string {
	if pe, ok := err.(*middleware.PanicError); ok {
		return fmt.Sprint("docket: step panicked: ", pe.Value)
	}
	return err.Error()
}
