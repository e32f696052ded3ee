package memory_test

import (
	"testing"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store { return memory.New(10_000) })
}
