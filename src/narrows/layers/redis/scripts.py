"""Lua run inside Redis, so a capacity check and the push are one atomic round trip."""

from __future__ import annotations

# KEYS[1] channel list; ARGV[1] envelope, ARGV[2] capacity, ARGV[3] expiry seconds.
# Returns 1 if queued, 0 if the channel was full.
SEND = """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
