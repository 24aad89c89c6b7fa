#!lua
-- stormguard idempotency store: abort(ticket).
-- Releases the key if the ticket still holds its lease: the work failed
-- before any side effect, so a retry may run it.
--
-- KEYS[1]  the entry:  <prefix>{<key>}
-- ARGV[1]  the ticket's owner token
--
-- Replies: 'ok'     released
--          'stale'  the lease ran out, another owner holds the key, or the
--                   request completed: nothing is deleted
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 'stale'
end
local state, fingerprint, owner = cmsgpack.unpack(raw)
if state ~= 'running' or owner ~= ARGV[1] then
  return 'stale'
end
redis.call('DEL', KEYS[1])
return 'ok'
