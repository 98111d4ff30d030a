"""The one Lua script that keeps a shared request budget in Redis (pure text, no I/O).

Everything happens in one atomic call, on Redis's own clock (``TIME``), so the hosts'
clocks never matter and two processes can never take the same slot. (A budget whose
processes run on a sped-up clock, against a simulator that plays CDM's minute faster, reads
``TIME`` that many times faster: every duration here is then in their seconds.)

1. the caller's heartbeat: it is (re)registered as a sharer; sharers not heard from
   for ``sharer_ttl`` seconds are dropped; the call answers how many are alive;
2. a throttle (429 / ``Retry-After``) the caller saw is published: nobody's slot is
   booked before it ends;
3. the caller's next slot is booked (when it asks for one): the earliest moment that
   * comes no sooner than the last slot booked by anybody (processes are served in turn),
   * keeps the pace of a token bucket of ``burst`` tokens refilled at ``limit`` a minute
     (GCRA: a "theoretical arrival time" ``tat``, with ``burst - 1`` intervals of slack),
   * is not in a pause,
   * leaves fewer than ``limit`` slots in the ``window`` seconds that end with it (a log
     of booked send times, a sorted set, trimmed to the last ``limit``).

The answer: seconds until the booked slot (0 when it is now), the live sharers, and the
seconds of pause left, all measured on Redis's clock, so the caller only waits durations.
Every key gets a TTL: nothing outlives its use, and nothing needs persistence.
"""

from __future__ import annotations

__all__ = ["BUDGET_SCRIPT"]

# KEYS: 1 = send log (sorted set), 2 = state (hash: tat, paused_until), 3 = sharers (zset)
# ARGV: 1 limit, 2 burst, 3 window, 4 sharer id, 5 sharer_ttl, 6 log member (unique),
#       7 take a slot ("1"/"0"), 8 pause seconds to publish (0 = none),
#       9 speed: seconds of the callers' clock per second of TIME (1 unless sped up)
BUDGET_SCRIPT = """
local clock = redis.call('TIME')
local speed = tonumber(ARGV[9] or '1')
local now = (tonumber(clock[1]) + tonumber(clock[2]) / 1000000) * speed
local limit = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local sharer_ttl = tonumber(ARGV[5])
local pause = tonumber(ARGV[8])

redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - sharer_ttl)
local sharers = redis.call('ZCARD', KEYS[3])
redis.call('PEXPIRE', KEYS[3], math.ceil(sharer_ttl * 2000 / speed))

local paused_until = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
if pause > 0 and now + pause > paused_until then
  paused_until = now + pause
  redis.call('HSET', KEYS[2], 'paused_until', string.format('%.6f', paused_until))
end

local delay = 0
local tat = tonumber(redis.call('HGET', KEYS[2], 'tat') or '0')
if ARGV[7] == '1' then
  local interval = 60 / limit
  local capacity = math.max(1, math.floor(limit))
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local at = math.max(now, tat - (burst - 1) * interval, paused_until)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #last > 0 then at = math.max(at, tonumber(last[2])) end
  if redis.call('ZCARD', KEYS[1]) >= capacity then
    local oldest = redis.call('ZRANGE', KEYS[1], -capacity, -capacity, 'WITHSCORES')
    at = math.max(at, tonumber(oldest[2]) + window)
  end
  tat = math.max(tat, at) + interval
  redis.call('HSET', KEYS[2], 'tat', string.format('%.6f', tat))
  redis.call('ZADD', KEYS[1], at, ARGV[6])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(capacity + 1))
  delay = at - now
end

local horizon = math.max(window, tat - now, paused_until - now) + window
redis.call('PEXPIRE', KEYS[1], math.ceil(horizon * 1000 / speed))
redis.call('PEXPIRE', KEYS[2], math.ceil(horizon * 1000 / speed))
return {
  string.format('%.6f', delay),
  sharers,
  string.format('%.6f', math.max(0, paused_until - now)),
}
"""
