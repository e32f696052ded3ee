package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxMsgpackDepth bounds the nesting of a MessagePack value, as encoding/json
// bounds its own: the decoder recurses once per level, and a Go stack that
// outgrows its limit kills the process.
const maxMsgpackDepth = 10_000

var errMsgpackTruncated = errors.New("msgpack: truncated value")

// checkMsgpack checks that b holds exactly one well-formed MessagePack value
// whose declared lengths fit in b, before the decoder sees it. The decoder
// trusts the count in an array header: five bytes declaring 2³² elements,
// decoded into an interface, make it allocate 64 GiB, and that "out of
// memory" is fatal, not a panic Decode could recover.
//
// Every value takes at least one byte, so the values still owed by the open
// containers can never outnumber the bytes left; keeping that invariant
// bounds what the decoder allocates by a multiple of len(b).
func checkMsgpack(b []byte) error {
	var buf [16]uint64
	pending := append(buf[:0], 1) // values each open container still holds
	owed := uint64(1)             // the sum of pending
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		owed--
		if len(b) == 0 {
			return errMsgpackTruncated
		}
		c := b[0]
		b = b[1:]
		var (
			lenBytes int    // size of a big-endian length after c
			skip     uint64 // bytes of payload after the length
			items    uint64 // values the container holds
			counted  bool   // the length after c is items, not skip
			pairs    bool   // a map: items counts pairs
			ext      bool   // an ext: one type byte before the payload
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f:
			items, pairs = uint64(c&0x0f), true
		case c <= 0x9f:
			items = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin 8, str 8
				lenBytes = 1
			case 0xc5, 0xda:
				lenBytes = 2
			case 0xc6, 0xdb:
				lenBytes = 4
			case 0xc7: // ext 8
				lenBytes, ext = 1, true
			case 0xc8:
				lenBytes, ext = 2, true
			case 0xc9:
				lenBytes, ext = 4, true
			case 0xcc, 0xd0:
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2:
				skip = 4
			case 0xcb, 0xcf, 0xd3:
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
				skip = 1 + 1<<(c-0xd4)
			case 0xdc:
				lenBytes, counted = 2, true
			case 0xdd:
				lenBytes, counted = 4, true
			case 0xde:
				lenBytes, counted, pairs = 2, true, true
			case 0xdf:
				lenBytes, counted, pairs = 4, true, true
			default: // 0xc1, never used
				return fmt.Errorf("msgpack: invalid code %#02x", c)
			}
		}
		if lenBytes > 0 {
			if len(b) < lenBytes {
				return errMsgpackTruncated
			}
			var n uint64
			switch lenBytes {
			case 1:
				n = uint64(b[0])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b))
			case 4:
				n = uint64(binary.BigEndian.Uint32(b))
			}
			b = b[lenBytes:]
			switch {
			case counted:
				items = n
			case ext:
				skip = n + 1
			default:
				skip = n
			}
		}
		if skip > uint64(len(b)) {
			return errMsgpackTruncated
		}
		b = b[skip:]
		if pairs {
			items *= 2
		}
		if items == 0 {
			continue
		}
		if owed += items; owed > uint64(len(b)) {
			return fmt.Errorf("msgpack: a container declares %d values, more than the %d bytes left", items, len(b))
		}
		if len(pending) > maxMsgpackDepth {
			return fmt.Errorf("msgpack: nested more than %d deep", maxMsgpackDepth)
		}
		pending = append(pending, items)
	}
	if len(b) != 0 {
		return errTrailing(len(b))
	}
	return nil
}
