package redis

import (
	"encoding/hex"
	"fmt"

	"github.com/docket-go/docket/keyer"
	"github.com/docket-go/docket/scope"
)

// The names of one entry's keys: the prefix, a hash tag, a kind letter and,
// for Workflow entries, the key's digest.
//
//	Global:   <prefix>{g<hex sum>}<kind>
//	Workflow: <prefix>{w<hex execution ID>}<kind><hex sum>
//	          <prefix>{w<hex execution ID>}i           the execution's index
//
// Redis Cluster places a key by the part between the first '{' and the
// next '}', so every key a script touches is in one slot: a Global
// entry's keys share a tag of their own, and all of an execution's keys
// (its entries and its index) share the execution's, which lets a script
// add an entry to the index in the same step that stores it. Hex keeps
// braces out of the tag whatever the execution ID holds.
const (
	kindResult  = "r" // the stored entry (backends.EncodeEntry)
	kindLease   = "l" // the current lease's token, with the lease's TTL
	kindCounter = "t" // the last token issued
	kindChannel = "c" // sharded pub/sub channel: "done" or "released"
	kindIndex   = "i" // set of the execution's entries' hex digests
)

// names are the keys of one entry.
type names struct {
	result, lease, counter, channel string
	// index and member are the execution's index set and the entry's
	// member in it; both empty for a Global entry.
	index, member string
}

func (s *byteStore) names(k keyer.Key) (names, error) {
	sum := hex.EncodeToString(k.Sum[:])
	switch k.Scope {
	case scope.Global:
		tag := s.prefix + "{g" + sum + "}"
		return names{
			result:  tag + kindResult,
			lease:   tag + kindLease,
			counter: tag + kindCounter,
			channel: tag + kindChannel,
		}, nil
	case scope.Workflow:
		tag := s.executionTag(k.Execution)
		return names{
			result:  tag + kindResult + sum,
			lease:   tag + kindLease + sum,
			counter: tag + kindCounter + sum,
			channel: tag + kindChannel + sum,
			index:   tag + kindIndex,
			member:  sum,
		}, nil
	default:
		return names{}, fmt.Errorf("%w: invalid scope %d", keyer.ErrInvalidKey, k.Scope)
	}
}

func (s *byteStore) executionTag(id string) string {
	return s.prefix + "{w" + hex.EncodeToString([]byte(id)) + "}"
}

// resultOf is the result key of an execution's entry whose member in the
// index is member.
func (s *byteStore) resultOf(execTag, member string) string {
	return execTag + kindResult + member
}
