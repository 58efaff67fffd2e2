"""Lua run inside Redis, so a capacity check and the push are one atomic round trip."""

from __future__ import annotations

import hashlib
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

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

# The whole group_send in one round trip, for one plain Redis server (not Cluster: the
# member lists are keys the script finds, not keys declared in KEYS) without encryption
# or per-pattern capacities. Members older than group_expiry are skipped here and deleted
# by group_add. KEYS[1] group sorted set. ARGV: [1] now, [2] group_expiry,
# [3] key prefix ("asgi:"), [4] envelope head (msgpack array header + deadline),
# [5] packed message, [6] expiry seconds, [7] capacity.
# Builds the same envelopes as the client-side path: one per member list, with the member
# suffixes of each process. Returns the names of members whose list was full.
GROUP_SEND = """
local members = redis.call('ZRANGE', KEYS[1], ARGV[1] - ARGV[2], '+inf', 'BYSCORE')
local order, suffixes = {}, {}
for _, channel in ipairs(members) do
    local bang = string.find(channel, '!', 1, true)
    local base = channel
    if bang then base = string.sub(channel, 1, bang) end
    local list = suffixes[base]
    if list == nil then
        list = {}
        suffixes[base] = list
        order[#order + 1] = base
    end
    if bang then list[#list + 1] = string.sub(channel, bang + 1) end
end
local full = {}
local capacity = tonumber(ARGV[7])
for _, base in ipairs(order) do
    local key = ARGV[3] .. base
    local list = suffixes[base]
    if redis.call('LLEN', key) >= capacity then
        if #list == 0 then
            full[#full + 1] = base
        else
            for _, suffix in ipairs(list) do full[#full + 1] = base .. suffix end
        end
    else
        local targets = '\\192'
        if #list > 0 then targets = cmsgpack.pack(list) end
        redis.call('RPUSH', key, ARGV[4] .. targets .. ARGV[5])
        redis.call('EXPIRE', key, ARGV[6])
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
