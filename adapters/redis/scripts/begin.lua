#!lua
-- stormguard idempotency store: begin(key, fingerprint, owner).
-- One atomic step: look the key up, and claim it if it is free.
--
-- KEYS[1]  the entry:          <prefix>{<key>}
-- KEYS[2]  the fence counter:  <prefix>{<key>}:fence   (same hash slot)
-- ARGV[1]  the request's fingerprint (bytes)
-- ARGV[2]  the owner token: random, made once per call of begin by the
--          caller and sent again when begin is re-sent
-- ARGV[3]  the lease, in milliseconds
-- ARGV[4]  how long the fence counter outlives its last use, in milliseconds
--
-- The entry is one MessagePack value, (state, fingerprint, owner,
-- generation[, response]), always written by SET ... PX: Redis cannot store
-- it without an expiry. In flight, the expiry is the lease; completed, the
-- TTL.
--
-- Replies: {'execute', generation}, {'replay', response},
--          {'in_progress', lease_left_ms}, {'mismatch'}
local raw = redis.call('GET', KEYS[1])
if raw then
  local state, fingerprint, owner, generation, response = cmsgpack.unpack(raw)
  if fingerprint ~= ARGV[1] then
    return {'mismatch'}
  end
  if state == 'done' then
    return {'replay', response}
  end
  if owner == ARGV[2] then
    -- This very call of begin, re-sent after its reply was lost: the same
    -- claim again, not a second one.
    return {'execute', generation}
  end
  return {'in_progress', redis.call('PTTL', KEYS[1])}
end
local generation = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], cmsgpack.pack('running', ARGV[1], ARGV[2], generation), 'PX', ARGV[3])
return {'execute', generation}
