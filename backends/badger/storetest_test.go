package badger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
	"github.com/docket-go/docket/backends/memory"
	"github.com/docket-go/docket/backends/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store { return open(t, t.TempDir()) })
}

func TestConformanceTiered(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backends.Store {
		return backends.Tiered(memory.New(10_000), open(t, t.TempDir()))
	})
}

// A Store not made by Open errs on every method, saying so; none panics.
func TestZeroStore(t *testing.T) {
	s := &badger.Store{}
	errs := map[string]error{"Close": s.Close()}
	_, errs["Get"] = s.Get(ctx, globalKey(1), userCodec)
	errs["Set"] = s.Set(ctx, globalKey(1), backends.Entry{Value: newUser(1)}, userCodec)
	errs["Delete"] = s.Delete(ctx, globalKey(1))
	_, errs["PurgeExecution"] = s.PurgeExecution(ctx, "e")
	errs["List"] = s.List(ctx, backends.Filter{}, func(backends.Info) error { return nil })
	_, errs["DeleteMatching"] = s.DeleteMatching(ctx, backends.Filter{})
	_, errs["RetainExecution"] = s.RetainExecution(ctx, "e", time.Now().Add(time.Hour))
	_, _, errs["Inspect"] = s.Inspect(ctx, globalKey(1))
	for name, err := range errs {
		if !errors.Is(err, backends.ErrClosed) || !strings.Contains(err.Error(), "use badger.Open") {
			t.Errorf("%s on a zero Store = %v; want ErrClosed saying to use badger.Open", name, err)
		}
	}
	if s.Name() != "badger" || !s.EncodesValues() || s.ByteStore() != nil {
		t.Errorf("zero Store: Name %q, EncodesValues %v, ByteStore %v", s.Name(), s.EncodesValues(), s.ByteStore())
	}
}
