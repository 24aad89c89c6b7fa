#!lua
-- stormguard idempotency store: complete(ticket, response).
-- Stores the response if the ticket still holds the key's lease.
--
-- KEYS[1]  the entry:  <prefix>{<key>}
-- ARGV[1]  the ticket's owner token
-- ARGV[2]  the response (bytes)
-- ARGV[3]  the TTL of the completed entry, in milliseconds
--
-- Replies: 'ok'     stored (or already stored by this ticket: a re-sent
--                   complete whose first reply was lost)
--          'stale'  the lease ran out (the entry expired, or another owner
--                   holds the key now): nothing is written
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 'stale'
end
local state, fingerprint, owner, generation = cmsgpack.unpack(raw)
if owner ~= ARGV[1] then
  return 'stale'
end
if state == 'done' then
  return 'ok'
end
redis.call('SET', KEYS[1], cmsgpack.pack('done', fingerprint, owner, generation, ARGV[2]), 'PX', ARGV[3])
return 'ok'
