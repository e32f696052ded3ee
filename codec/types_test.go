package codec

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that no codec leaves goroutines behind (msgpack.Unmarshal
// would: see msgpackCodec.Unmarshal).
func TestMain(m *testing.M) {
	// Fixed, so that "Local" in a test means what it says on every machine.
	time.Local = time.FixedZone("Test/Local", -5*3600)
	goleak.VerifyTestMain(m)
}

// smallResult is a typical small step result.
type smallResult struct {
	ID      string
	Name    string
	Age     int
	Tags    []string
	Created time.Time
}

func newSmall() smallResult {
	return smallResult{
		ID:      "user-12345",
		Name:    "Alice Example",
		Age:     42,
		Tags:    []string{"admin", "beta", "eu-west"},
		Created: time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
	}
}

// largeResult is a result of about 10 KiB: slices of nested structs, a map,
// a []byte.
type largeResult struct {
	ID       string
	Owner    smallResult
	Items    []lineItem
	Attrs    map[string]string
	Blob     []byte
	Total    float64
	Revision int64
	Created  time.Time
}

type lineItem struct {
	SKU      string
	Title    string
	Qty      int
	Price    float64
	Tags     []string
	Discount *float64
	Updated  time.Time
}

func newLarge() largeResult {
	base := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	l := largeResult{
		ID:       "order-0001",
		Owner:    newSmall(),
		Attrs:    map[string]string{},
		Blob:     make([]byte, 1024),
		Revision: 1 << 40,
		Created:  base,
	}
	for i := range l.Blob {
		l.Blob[i] = byte(i * 7)
	}
	for i := 0; i < 44; i++ {
		var discount *float64
		if i%3 == 0 {
			d := float64(i+1) / 100 // not 0: Gob drops a pointer to a zero value
			discount = &d
		}
		it := lineItem{
			SKU:      fmt.Sprintf("SKU-%06d", i*7919),
			Title:    fmt.Sprintf("Item number %d, a thing worth buying", i),
			Qty:      i%5 + 1,
			Price:    float64(i*137%1000) + 0.99,
			Tags:     []string{"warehouse-" + fmt.Sprint(i%4), "fragile"},
			Discount: discount,
			Updated:  base.Add(time.Duration(i) * time.Minute),
		}
		l.Total += it.Price * float64(it.Qty)
		l.Items = append(l.Items, it)
	}
	for i := 0; i < 20; i++ {
		l.Attrs[fmt.Sprintf("attribute-%02d", i)] = fmt.Sprintf("value of attribute %d", i)
	}
	return l
}

// utc gives the comparable form of results whose times may come back in
// another location (Msgpack decodes times in time.Local).
func (s smallResult) utc() smallResult {
	s.Created = s.Created.UTC()
	return s
}

func (l largeResult) utc() largeResult {
	l.Owner = l.Owner.utc()
	l.Created = l.Created.UTC()
	items := make([]lineItem, len(l.Items))
	for i, it := range l.Items {
		it.Updated = it.Updated.UTC()
		items[i] = it
	}
	l.Items = items
	return l
}
