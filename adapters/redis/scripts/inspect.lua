#!lua flags=no-writes
-- stormguard idempotency store: inspect(key), for operators and tests.
-- Reads an entry without changing it.
--
-- KEYS[1]  the entry:  <prefix>{<key>}
--
-- Replies: nil, or {state, fingerprint, owner, generation, expires_in_ms}
--          with state 'running' or 'done'
local raw = redis.call('GET', KEYS[1])
if not raw then
  return nil
end
local state, fingerprint, owner, generation = cmsgpack.unpack(raw)
return {state, fingerprint, owner, generation, redis.call('PTTL', KEYS[1])}
