package middleware

import (
	"context"
	"fmt"
	"reflect"
)

// Layer is one layer of middleware that [Apply] puts around a step: a
// [Middleware] of the step's types (such as [Persist]), or an [Around]
// (such as [Retry] and [Timeout]), which fits steps of every type.
type Layer interface {
	layer()
}

func (Middleware[In, Out]) layer() {}

// Around is middleware that does not look at a step's input or result, so
// it is not generic: one value fits steps of every type. It is given the
// call's context and the rest of the call, which it may run any number of
// times, each with a context derived from ctx; it returns the error of the
// call. [Retry] and [Timeout] are Arounds.
type Around func(ctx context.Context, call func(ctx context.Context) error) error

func (Around) layer() {}

// Apply returns step inside layers, the first one outermost:
// Apply(step, a, b, c) is a(b(c(step))), as Chain(a, b, c)(step) is. In and
// Out are inferred from step, and an Around names no types, so only a
// generic layer such as Persist needs them spelled, once:
//
//	fetch := middleware.Apply(FetchUser,
//		middleware.Persist[UserID, *User]("fetch_user", opts...),
//		middleware.Retry(transient),
//		middleware.Timeout(time.Second))
//
// Like Wrap, Apply panics when its arguments can never work: a nil layer,
// or a Middleware of other types than step's.
func Apply[In, Out any](step func(context.Context, In) (Out, error), layers ...Layer) Step[In, Out] {
	if step == nil {
		panic("docket: Apply needs a non-nil step")
	}
	s := Step[In, Out](step)
	for i := len(layers) - 1; i >= 0; i-- {
		switch l := layers[i].(type) {
		case Middleware[In, Out]:
			if l == nil {
				panic(fmt.Sprintf("docket: Apply: layer %d is a nil Middleware", i))
			}
			s = l(s)
		case Around:
			if l == nil {
				panic(fmt.Sprintf("docket: Apply: layer %d is a nil Around", i))
			}
			s = around(l, s)
		case nil:
			panic(fmt.Sprintf("docket: Apply: layer %d is nil", i))
		default:
			panic(fmt.Sprintf("docket: Apply: layer %d is a %T, which does not fit a step of type %v",
				i, l, reflect.TypeFor[Step[In, Out]]()))
		}
	}
	return s
}

// around turns a into a step around next. Each run of the rest of the call
// sets out, so the result is the one of the run that returned last.
func around[In, Out any](a Around, next Step[In, Out]) Step[In, Out] {
	return func(ctx context.Context, in In) (Out, error) {
		var out Out
		err := a(ctx, func(ctx context.Context) error {
			var err error
			out, err = next(ctx, in)
			return err
		})
		return out, err
	}
}
