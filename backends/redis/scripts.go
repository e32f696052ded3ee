package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts that make each step of the protocol one atomic operation in
// Redis. Every key a script touches is passed in KEYS and shares one hash
// tag (see names), so they run on Redis Cluster too. Publishing uses
// sharded pub/sub (SPUBLISH, Redis 7), whose channels are placed like keys:
// a message goes to the shard that holds the entry, not to every node.

// indexLua adds an entry to its execution's index (KEYS[n], member
// ARGV[m]) and keeps the index alive as long as its longest-lived entry:
// no expiry if the entry has none (px 0), else at least px. A set that
// SADD has just created has no expiry, like one made to keep an entry
// forever, so whether it existed is checked first.
const indexLua = `
local function index(key, member, px)
	local existed = redis.call('EXISTS', key)
	redis.call('SADD', key, member)
	if px == 0 then
		redis.call('PERSIST', key)
		return
	end
	local left = redis.call('PTTL', key)
	if existed == 0 or (left >= 0 and left < px) then
		redis.call('PEXPIRE', key, px)
	end
end
`

// setScript stores an entry unconditionally and wakes the waiters. A
// negative px means the entry has already expired: the key's entry is
// removed instead.
//
//	KEYS: result, channel[, index]
//	ARGV: value, px (0: no expiry)[, member]
var setScript = goredis.NewScript(indexLua + `
local px = tonumber(ARGV[2])
if px < 0 then
	redis.call('DEL', KEYS[1])
	if KEYS[3] then redis.call('SREM', KEYS[3], ARGV[3]) end
	return 0
end
if px > 0 then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
else
	redis.call('SET', KEYS[1], ARGV[1])
end
if KEYS[3] then index(KEYS[3], ARGV[3], px) end
redis.call('SPUBLISH', KEYS[2], 'done')
return 1
`)

// deleteScript removes an entry and its index membership.
//
//	KEYS: result[, index]
//	ARGV: [member]
var deleteScript = goredis.NewScript(`
local n = redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('SREM', KEYS[2], ARGV[1]) end
return n
`)

// purgeScript removes a batch of an execution's entries and their index
// members.
//
//	KEYS: index, result...
//	ARGV: member... (in the order of the result keys)
var purgeScript = goredis.NewScript(`
local n = 0
if #KEYS > 1 then
	n = redis.call('DEL', unpack(KEYS, 2))
	redis.call('SREM', KEYS[1], unpack(ARGV))
end
return n
`)

// retainScript rewrites a batch of an execution's entries with a new
// expiry, each only if it still holds the bytes the caller read, so that a
// concurrent write or delete is never undone. An entry whose new bytes are
// empty (it could not be read back) is removed instead; a stored entry is
// never empty. It returns how many it rewrote and the latest expiry (Unix
// ms) of the entries another writer changed meanwhile: -1 if one of them
// has none, 0 if there were none.
//
//	KEYS: index, result...
//	ARGV: per result key: member, SHA-1 of the bytes read, new bytes or "",
//	      expiry (Unix ms)
var retainScript = goredis.NewScript(`
local n, foreign = 0, 0
for i = 2, #KEYS do
	local j = (i - 2) * 4 + 1
	local v = redis.call('GET', KEYS[i])
	if v and redis.sha1hex(v) == ARGV[j + 1] then
		if ARGV[j + 2] == '' then
			redis.call('DEL', KEYS[i])
			redis.call('SREM', KEYS[1], ARGV[j])
		else
			redis.call('SET', KEYS[i], ARGV[j + 2], 'PXAT', ARGV[j + 3])
			n = n + 1
		end
	elseif v and foreign ~= -1 then
		local t = redis.call('PEXPIRETIME', KEYS[i])
		if t == -1 or t > foreign then foreign = t end
	end
end
return {n, foreign}
`)

// retainIndexScript ends an execution's index when its entries end, after
// retainScript has rewritten them: at the given time, unless the index has
// to live longer (an entry written meanwhile) or already ends earlier.
//
//	KEYS: index
//	ARGV: Unix ms
var retainIndexScript = goredis.NewScript(`
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -1 or t > tonumber(ARGV[1]) then
	redis.call('PEXPIREAT', KEYS[1], ARGV[1])
end
return t
`)

// Replies of acquireScript, in its first element.
const (
	acquireHit   = 1 // {1, entry}
	acquireTaken = 2 // {2, token}
	acquireHeld  = 3 // {3, token of the holder, milliseconds it has left}
)

// acquireScript returns the stored entry, or takes the lease, or says who
// holds it.
//
// A token is the per-key counter plus one, and the counter is first raised
// to Redis's clock in microseconds if it is behind. The counter lives as
// long as a lease (so counters of keys no one runs any more do not
// accumulate), and once it has expired the clock has passed every token it
// issued: a lease lasts at least milliseconds, and no key is granted a
// lease more than once per microsecond. Tokens thus keep increasing as
// long as Redis's clock does not step back by more than a lease's TTL.
// Numbers stay strings, exact: Lua's numbers are doubles, which print
// large integers in exponent form.
//
// ARGV[2], when not empty, is the SHA-1 of a stored entry the caller could
// not read (corrupt, or past its expiry): if the entry is still those
// bytes, it is deleted and the lease taken as if there were none, so the
// holder's commit replaces it. Other bytes are returned as a hit: another
// process has written the key since.
//
//	KEYS: result, lease, counter
//	ARGV: lease TTL in ms, SHA-1 of unreadable bytes or ""
var acquireScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	if ARGV[2] == '' or redis.sha1hex(v) ~= ARGV[2] then
		return {1, v}
	end
	redis.call('DEL', KEYS[1])
end
local holder = redis.call('GET', KEYS[2])
if holder then
	return {3, holder, redis.call('PTTL', KEYS[2])}
end
local now = redis.call('TIME')
local clock = now[1] .. string.format('%06d', tonumber(now[2]))
local last = redis.call('GET', KEYS[3])
if not last or tonumber(last) < tonumber(clock) then
	redis.call('SET', KEYS[3], clock)
end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
local token = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
return {2, token}
`)

// renewScript extends the lease if it is still the caller's.
//
//	KEYS: lease
//	ARGV: token, lease TTL in ms
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// Replies of commitScript, in its first element.
const (
	commitStored = 1 // {1}
	commitWinner = 2 // {2, entry}: a result was there; it is returned
	commitLost   = 3 // {3}: the lease is not the caller's and no result is stored
)

// commitScript stores the holder's entry if no result is stored and the
// lease is still the caller's, ends the lease and wakes the waiters.
//
//	KEYS: result, lease, channel[, index]
//	ARGV: token, value, px (0: no expiry)[, member]
var commitScript = goredis.NewScript(indexLua + `
local v = redis.call('GET', KEYS[1])
local mine = redis.call('GET', KEYS[2]) == ARGV[1]
if v then
	if mine then redis.call('DEL', KEYS[2]) end
	return {2, v}
end
if not mine then
	return {3}
end
local px = tonumber(ARGV[3])
if px > 0 then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', px)
else
	redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('DEL', KEYS[2])
if KEYS[4] then index(KEYS[4], ARGV[4], px) end
redis.call('SPUBLISH', KEYS[3], 'done')
return {1}
`)

// releaseScript ends the lease without a result if it is still the
// caller's, and wakes the waiters so that one takes it over at once.
//
//	KEYS: lease, channel
//	ARGV: token
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	redis.call('SPUBLISH', KEYS[2], 'released')
	return 1
end
return 0
`)
