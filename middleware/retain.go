package middleware

import (
	"context"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/scope"
)

var _ scope.Retainer = observedPurger{}

// RetainExecution passes an execution's retention (scope.WithRetention) on
// to the store, so that wrapping a store with an observer does not make it
// a store that cannot retain. It is not reported to the observer, whose
// Purged is for removals: when the store cannot retain, End purges it
// through PurgeExecution, which reports.
func (o observedPurger) RetainExecution(ctx context.Context, id string, until time.Time) (int, error) {
	return backends.RetainExecution(ctx, o.store, id, until)
}
