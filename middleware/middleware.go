package middleware

import "context"

// Step is a unit of work: a function of a context and an input.
type Step[In, Out any] func(ctx context.Context, in In) (Out, error)

// Middleware wraps a step in another step of the same type.
type Middleware[In, Out any] func(Step[In, Out]) Step[In, Out]

// Chain composes middleware: Chain(outer, a, b)(step) is
// outer(a(b(step))), so outer sees each call first. [Apply] does the same
// for a step, inferring its types, and also takes [Around]s such as Retry
// and Timeout.
func Chain[In, Out any](outer Middleware[In, Out], others ...Middleware[In, Out]) Middleware[In, Out] {
	return func(next Step[In, Out]) Step[In, Out] {
		for i := len(others) - 1; i >= 0; i-- {
			next = others[i](next)
		}
		return outer(next)
	}
}
