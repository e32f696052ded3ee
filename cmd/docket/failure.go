package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"unicode"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/keyer"
)

// Stored failures (middleware.WithErrorCaching) are recorded in an
// entry's header, which backends.Info does not report and backends.Filter
// cannot select on: List, Inspect and DeleteMatching treat a failure as
// an entry like any other. The command therefore reads the entries' bytes
// through the store's ByteStore and finds the failure record itself.

// The parts of the stored entry format, version 1 (see backends/entry.go),
// that entryFailure reads. TestEntryFailure checks them against
// backends.EncodeEntry.
const (
	entryMagic    = 0xDC
	entryVersion  = 1
	entryFixedLen = 19 // magic, version, codec, created, expires
	entryCRCLen   = 4
	extFailure    = 4 // the failure's code (length-prefixed), then its message
)

var (
	crc32c        = crc32.MakeTable(crc32.Castagnoli)
	errEntryShort = fmt.Errorf("%w: truncated", backends.ErrCorrupt)
)

// entryFailure returns the failure a stored entry records, or nil for an
// entry that holds a result. An entry it cannot read (damaged, another
// format version) is an error wrapping backends.ErrCorrupt.
func entryFailure(b []byte) (*backends.Failure, error) {
	if len(b) < 2 {
		return nil, errEntryShort
	}
	if b[0] != entryMagic {
		return nil, fmt.Errorf("%w: not a docket entry (first byte %#02x)", backends.ErrCorrupt, b[0])
	}
	if b[1] != entryVersion {
		return nil, fmt.Errorf("%w: format version %d (this docket reads version %d)", backends.ErrCorrupt, b[1], entryVersion)
	}
	if len(b) < entryFixedLen+2+entryCRCLen {
		return nil, errEntryShort
	}
	body := b[:len(b)-entryCRCLen]
	if crc32.Checksum(body, crc32c) != binary.LittleEndian.Uint32(b[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", backends.ErrCorrupt)
	}
	rest := body[entryFixedLen:]
	_, rest, err := cutField(rest) // the producing execution
	if err != nil {
		return nil, err
	}
	ext, _, err := cutField(rest)
	if err != nil {
		return nil, err
	}
	for len(ext) > 0 {
		tag, w := binary.Uvarint(ext)
		if w <= 0 {
			return nil, errEntryShort
		}
		var v []byte
		if v, ext, err = cutField(ext[w:]); err != nil {
			return nil, err
		}
		if tag == extFailure {
			code, msg, err := cutField(v)
			if err != nil {
				return nil, err
			}
			return &backends.Failure{Code: string(code), Message: string(msg)}, nil
		}
	}
	return nil, nil
}

// cutField splits a uvarint length and that many bytes off b.
func cutField(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errEntryShort
	}
	end := w + int(n)
	return b[w:end], b[end:], nil
}

// failures maps entries to the failures they record; its keys have an
// empty Step, as the stores' binary keys do.
type failures map[keyer.Key]*backends.Failure

// of returns the failure the entry under k records, or nil.
func (fs failures) of(k keyer.Key) *backends.Failure {
	k.Step = ""
	return fs[k]
}

// peek is a store's ByteStore as the command lists it. A ByteTier on peek
// lists as the store's own tier does, from the records peek's Scan passes
// on, while peek notes the failures those records hold: one scan gives
// both.
type peek struct {
	backends.ByteStore
	scanner backends.ByteScanner
	found   failures
	// unread is set when the scan gave records without their bytes.
	unread bool
}

var _ backends.ByteScanner = (*peek)(nil)

func (k *peek) Scan(ctx context.Context, f backends.Filter, fn func(backends.ScanRecord) error) error {
	return k.scanner.Scan(ctx, f, func(r backends.ScanRecord) error {
		if r.Value == nil {
			k.unread = true
		} else {
			k.note(r.Key, r.Value)
		}
		return fn(r)
	})
}

// DeleteWhere is never called: the command deletes through the store.
func (k *peek) DeleteWhere(context.Context, backends.Filter, func(backends.ScanRecord) bool) (int, error) {
	return 0, fmt.Errorf("peek: delete: %w", backends.ErrUnsupported)
}

// note records the failure the entry val under the binary key raw holds,
// if any. Entries it cannot read are skipped, as List leaves them out.
func (k *peek) note(raw, val []byte) {
	fl, err := entryFailure(val)
	if err != nil || fl == nil {
		return
	}
	if key, err := keyer.ParseBinary(raw); err == nil {
		k.found[key] = fl
	}
}

// valueScanner is a store whose own scans give its columns only (SQLite),
// which can also scan the entries' bytes.
type valueScanner interface {
	// scanValues calls fn with the binary key and the stored bytes of
	// every entry f matches, and maybe others; the slices are valid only
	// until fn returns.
	scanValues(ctx context.Context, f backends.Filter, fn func(key, val []byte)) error
}

// listFailures calls fn with the Info of every entry f matches, as the
// store's List does, and returns the stored failures among them (it may
// hold others too: a store's scan may be wider than f). The store is
// scanned once when its scan gives the entries' bytes (Badger, Redis);
// one whose scan gives columns only (SQLite) is then scanned for the
// bytes.
func listFailures(ctx context.Context, o *opened, f backends.Filter, fn func(backends.Info) error) (failures, error) {
	s := o.s
	bs := s.ByteStore()
	sc, ok := bs.(backends.ByteScanner)
	if !ok {
		return nil, fmt.Errorf("%s: list: %w", s.Name(), backends.ErrUnsupported)
	}
	k := &peek{ByteStore: bs, scanner: sc, found: failures{}}
	p := o.progress("scanning")
	err := backends.NewByteTier(s.Name(), k).List(ctx, f, func(i backends.Info) error {
		p.add()
		return fn(i)
	})
	p.done()
	if err != nil {
		return nil, err
	}
	if !k.unread {
		return k.found, nil
	}
	vs, ok := s.(valueScanner)
	if !ok {
		return nil, fmt.Errorf("%s: read failures: the scan gives no entries' bytes: %w", s.Name(), backends.ErrUnsupported)
	}
	p = o.progress("reading failures")
	err = vs.scanValues(ctx, f, func(key, val []byte) {
		p.add()
		k.note(key, val)
	})
	p.done()
	if err != nil {
		return nil, fmt.Errorf("%s: read failures: %w", s.Name(), err)
	}
	return k.found, nil
}

// readFailure reads the failure the entry under k records, or nil; an
// entry that is gone is ErrNotFound.
func readFailure(ctx context.Context, s store, k keyer.Key) (*backends.Failure, error) {
	raw, err := backends.EntryKey(nil, k)
	if err != nil {
		return nil, err
	}
	val, err := s.ByteStore().Get(ctx, raw)
	if err != nil {
		return nil, err
	}
	return entryFailure(val)
}

// token prints a failure code: as it is when it is one word of printable
// characters, as a quoted string otherwise (an empty code is "").
func token(s string) string {
	if s == "" {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' {
			return strconv.Quote(s)
		}
	}
	return s
}
