"""Lua run inside Redis, so a capacity check and the push are one atomic round trip."""

from __future__ import annotations

import hashlib
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

# KEYS[1] channel list; ARGV[1] envelope, ARGV[2] capacity, ARGV[3] expiry seconds.
# Returns 1 if queued, 0 if the channel was full.
SEND = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) > tonumber(ARGV[2]) then
    redis.call('RPOP', KEYS[1])
    return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The whole group_send in one round trip, for one plain Redis server (not Cluster: the
# lists are keys the script finds in the group, not keys declared in KEYS) with one
# capacity for every channel. KEYS[1] group sorted set (non-local names scored by their
# latest join). ARGV: [1] oldest live join time, [2] key prefix ("asgi:"), [3] envelope
# for a process list (names the group), [4] envelope for a plain channel, [5] expiry
# seconds, [6] capacity. Returns the number of entries, then the names whose list was full.
GROUP_SEND = """
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE')
local capacity = tonumber(ARGV[6])
local full = {#members}
for _, name in ipairs(members) do
    local key = ARGV[2] .. name
    local envelope = ARGV[4]
    if string.byte(name, -1) == 33 then envelope = ARGV[3] end
    -- Push, then take it back if that went over capacity: one call in the common case.
    if redis.call('RPUSH', key, envelope) > capacity then
        redis.call('RPOP', key)
        full[#full + 1] = name
    else
        redis.call('EXPIRE', key, ARGV[5])
    end
end
return full
"""

# KEYS[1] group sorted set; ARGV[1] entry, ARGV[2] time the caller saw no local member.
# Removes the entry unless a group_add scored it later (a join racing the removal wins).
FORGET = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
    return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

# channels_redis 4.x's storage (the "channels_redis" storage format): a channel is a
# sorted set of serialized messages scored by send time. KEYS[1] channel; ARGV[1] the
# newest score already expired, [2] capacity, [3] message, [4] now, [5] expiry seconds.
# The steps channels_redis runs as four commands, in one round trip. 1 queued, 0 full.
CR_SEND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# A group_send's messages for the channel keys of one shard. KEYS: the keys; ARGV: one
# message per key, then one capacity per key, then the newest expired score, now and the
# expiry seconds. Returns the 1-based indexes of the keys that were full.
CR_GROUP_SEND = """
local n = #KEYS
local oldest, now, expiry = ARGV[2 * n + 1], ARGV[2 * n + 2], ARGV[2 * n + 3]
local full = {}
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, oldest)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        full[#full + 1] = i
    end
end
return full
"""


class Script:
    """A Lua script run by SHA (EVALSHA), loaded on first use and again after a Redis
    restart (NOSCRIPT) by running it with EVAL."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, client: Any, numkeys: int, *keys_and_args: Any) -> Any:
        try:
            return await client.evalsha(self.sha, numkeys, *keys_and_args)
        except NoScriptError:
            return await client.eval(self.source, numkeys, *keys_and_args)

    async def run_many(self, client: Any, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Run the script once per ``(numkeys, *keys_and_args)`` in one pipeline."""
        if isinstance(client, RedisCluster):
            # redis-py's cluster pipelines refuse EVALSHA; EVAL is cached by SHA in Redis.
            async with client.pipeline(transaction=False) as pipe:
                for call in calls:
                    pipe.eval(self.source, *call)
                return list(await pipe.execute())
        async with client.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(self.sha, *call)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            async with client.pipeline(transaction=False) as pipe:
                for index in missing:
                    pipe.eval(self.source, *calls[index])
                for index, result in zip(missing, await pipe.execute(), strict=True):
                    results[index] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


send = Script(SEND)
group_send = Script(GROUP_SEND)
forget = Script(FORGET)
cr_send = Script(CR_SEND)
cr_group_send = Script(CR_GROUP_SEND)
