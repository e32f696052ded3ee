package codec

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
)

// union is the set of concrete types registered for one interface type.
type union struct {
	types  []reflect.Type
	byName map[string]reflect.Type
	names  map[reflect.Type]string
}

var (
	registryMu sync.Mutex
	registry   sync.Map // interface reflect.Type -> *union (replaced, never changed)
)

// Register records the concrete types that a result of interface type I may
// hold, one example value of each, so that it survives a byte tier: Bind[I]
// then stores each value with the name of its concrete type and decodes it
// into that type, a typed nil pointer included. Without it an interface
// result comes back in the codec's generic form, and CheckRoundTrip (which
// the middleware calls when wrapping a step) refuses it.
//
//	codec.Register[Shape](Circle{}, &Square{})
//
// Call it before wrapping the step, from init or main. The names stored are
// the types' package paths and names, so renaming or moving a registered
// type makes its entries unreadable (a miss). Register panics when I is not
// an interface type, on a nil value, or when two types would share a name.
// Registering a type again does nothing.
func Register[I any](values ...I) {
	it := reflect.TypeFor[I]()
	if it.Kind() != reflect.Interface {
		panic(fmt.Sprintf("codec: Register[%v]: not an interface type", it))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	u := &union{byName: map[string]reflect.Type{}, names: map[reflect.Type]string{}}
	if old := registered(it); old != nil {
		u.types = append(u.types, old.types...)
		for k, v := range old.byName {
			u.byName[k] = v
		}
		for k, v := range old.names {
			u.names[k] = v
		}
	}
	for _, v := range values {
		if any(v) == nil {
			panic(fmt.Sprintf("codec: Register[%v]: nil value", it))
		}
		t := reflect.TypeOf(any(v))
		if _, ok := u.names[t]; ok {
			continue
		}
		name := typeName(t)
		if other, ok := u.byName[name]; ok {
			panic(fmt.Sprintf("codec: Register[%v]: %v and %v share the name %q", it, other, t, name))
		}
		u.types = append(u.types, t)
		u.byName[name] = t
		u.names[t] = name
	}
	registry.Store(it, u)
}

func registered(it reflect.Type) *union {
	if u, ok := registry.Load(it); ok {
		return u.(*union)
	}
	return nil
}

// typeName names t by its package path and name, with a "*" per pointer.
func typeName(t reflect.Type) string {
	stars := ""
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		stars += "*"
		t = t.Elem()
	}
	if t.Name() == "" {
		return stars + t.String()
	}
	return stars + t.PkgPath() + "." + t.Name()
}

// unionBinding is a codec bound to an interface type with registered
// concrete types: a value is stored as the length-prefixed name of its
// concrete type (empty for nil) and the codec's encoding of it.
type unionBinding[T any] struct {
	c   Codec
	typ reflect.Type
}

func (b unionBinding[T]) ID() uint8    { return b.c.ID() }
func (b unionBinding[T]) Name() string { return b.c.Name() }

func (b unionBinding[T]) Encode(v any) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("codec %s: encode %T: panic: %v", b.c.Name(), v, r)
		}
	}()
	if v == nil {
		return []byte{0}, nil
	}
	u := registered(b.typ)
	name, ok := "", false
	if u != nil {
		name, ok = u.names[reflect.TypeOf(v)]
	}
	if !ok {
		return nil, fmt.Errorf("codec %s: encode %T: not registered with codec.Register[%v]", b.c.Name(), v, b.typ)
	}
	payload, err := b.c.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec %s: encode %T: %w", b.c.Name(), v, err)
	}
	data = binary.AppendUvarint(make([]byte, 0, 1+len(name)+len(payload)), uint64(len(name)))
	data = append(data, name...)
	return append(data, payload...), nil
}

func (b unionBinding[T]) Decode(data []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &decodeError{b.c.Name(), b.typ, fmt.Errorf("panic: %v", r)}
		}
	}()
	n, w := binary.Uvarint(data)
	if w <= 0 || n > uint64(len(data)-w) {
		return nil, &decodeError{b.c.Name(), b.typ, fmt.Errorf("bad type name length")}
	}
	if n == 0 {
		if len(data) != w {
			return nil, &decodeError{b.c.Name(), b.typ, errTrailing(len(data) - w)}
		}
		var zero T
		return zero, nil
	}
	name := string(data[w : w+int(n)])
	var ct reflect.Type
	if u := registered(b.typ); u != nil {
		ct = u.byName[name]
	}
	if ct == nil {
		return nil, &decodeError{b.c.Name(), b.typ, fmt.Errorf("type %q is not registered with codec.Register[%v]", name, b.typ)}
	}
	p := reflect.New(ct)
	if err := b.c.Unmarshal(data[w+int(n):], p.Interface()); err != nil {
		return nil, &decodeError{b.c.Name(), b.typ, err}
	}
	t, ok := p.Elem().Interface().(T)
	if !ok {
		return nil, &decodeError{b.c.Name(), b.typ, fmt.Errorf("%v does not implement %v", ct, b.typ)}
	}
	return t, nil
}
