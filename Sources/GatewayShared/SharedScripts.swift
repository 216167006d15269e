/// The Lua scripts of the shared tier: every step that reads and then writes Redis runs as one script, so
/// replicas never see each other's half-done work, and every time they read is Redis's (`TIME`), never a
/// replica's. Run by ``RedisClient/evaluate(_:keys:arguments:on:)`` (`EVALSHA`, loaded again on
/// `NOSCRIPT`).
///
/// Pages are hashes: `b` the bytes, `ct` the content type, `at` when the upstream answered (Redis
/// milliseconds), and the invalidation generations they were fetched under (`ga` every page's, `gx` the
/// agent's, or `gn` the generation of pages without an agent filter). A page whose generations are not the
/// current ones is gone: an invalidation is one `HINCRBY`, and a page fetched before it can never be served
/// after it, even if it is stored after it.
enum SharedScripts {
    /// KEYS: page, generations. ARGV: the agent (`""`: the page has no agent filter), and optionally how
    /// long a page is fresh in ms (absent or 0: any age).
    /// Returns `{body, content type, age in ms}` for a current, fresh page, else nil (a page of an old
    /// generation is deleted on the way).
    static let readPage = RedisScript(
        """
        local page = redis.call('HMGET', KEYS[1], 'b', 'ct', 'at', 'ga', 'gx')
        if not page[1] then return false end
        local gens = redis.call('HMGET', KEYS[2], 'all', ARGV[1] == '' and 'none' or ('a:' .. ARGV[1]))
        if (page[4] or '0') ~= (gens[1] or '0') or (page[5] or '0') ~= (gens[2] or '0') then
          redis.call('DEL', KEYS[1])
          return false
        end
        local now = redis.call('TIME')
        local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        local age = nowMs - tonumber(page[3])
        local fresh = tonumber(ARGV[2] or '0') or 0
        if fresh > 0 and age >= fresh then return false end
        return {page[1], page[2], age}
        """
    )

    /// KEYS: page, generations, flight lock, and optionally the result (deleted when this caller leads, so an
    /// earlier flight's result never answers this one's followers). ARGV: the agent, the leader's token, the
    /// lock's life in ms, and optionally how long a page is fresh in ms (absent or 0: any age).
    /// Returns `{'page', body, content type, age ms}` when a current, fresh page is there; `{'lead', ga, gx}`
    /// when this caller now holds the lock (and must store under those generations); `{'follow', lock ms
    /// left}` when another replica leads. A page past its freshness is left for its life's end (or the
    /// next store) and the question is led again.
    static let enterFlight = RedisScript(
        """
        local field = ARGV[1] == '' and 'none' or ('a:' .. ARGV[1])
        local gens = redis.call('HMGET', KEYS[2], 'all', field)
        local ga, gx = gens[1] or '0', gens[2] or '0'
        local page = redis.call('HMGET', KEYS[1], 'b', 'ct', 'at', 'ga', 'gx')
        if page[1] then
          if (page[4] or '0') == ga and (page[5] or '0') == gx then
            local now = redis.call('TIME')
            local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
            local age = nowMs - tonumber(page[3])
            local fresh = tonumber(ARGV[4] or '0') or 0
            if fresh == 0 or age < fresh then
              return {'page', page[1], page[2], tostring(age)}
            end
          else
            redis.call('DEL', KEYS[1])
          end
        end
        if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
          -- An earlier flight's result must not answer this one's followers.
          if KEYS[4] then redis.call('DEL', KEYS[4]) end
          return {'lead', ga, gx}
        end
        return {'follow', tostring(redis.call('PTTL', KEYS[3]))}
        """
    )

    /// KEYS: page, generations, flight lock, result. ARGV: the agent, the token, the generations it led under
    /// (ga, gx), the status, the body, the content type, the page's life in ms (TTL plus stale window; 0: do not
    /// store), how long other replicas may read a non-200 result in ms, the channel, the message.
    /// Stores a 200 only when the generations are still current (no purge since the flight began). Keeps any
    /// other answer, and a 200 it was not to store (no life), briefly for the followers, so that they never
    /// wait for a page that will not come; a 200 from before a purge is kept from them (status 0: they try
    /// again). Releases the lock (if it is still this leader's) and publishes. Returns 1 when a page was
    /// stored.
    static let finishFlight = RedisScript(
        """
        local field = ARGV[1] == '' and 'none' or ('a:' .. ARGV[1])
        local stored = 0
        if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
        local gens = redis.call('HMGET', KEYS[2], 'all', field)
        local current = (gens[1] or '0') == ARGV[3] and (gens[2] or '0') == ARGV[4]
        if ARGV[5] == '200' and not current then
          redis.call('SET', KEYS[4], '0 \\n', 'PX', ARGV[9])
          stored = -1
        elseif ARGV[5] == '200' and tonumber(ARGV[8]) > 0 then
          local now = redis.call('TIME')
          local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[1], 'b', ARGV[6], 'ct', ARGV[7], 'at', nowMs, 'ga', ARGV[3], 'gx', ARGV[4])
          redis.call('PEXPIRE', KEYS[1], ARGV[8])
          stored = 1
        end
        if stored == 0 then
          redis.call('SET', KEYS[4], ARGV[5] .. ' ' .. ARGV[7] .. '\\n' .. ARGV[6], 'PX', ARGV[9])
        end
        if stored < 0 then stored = 0 end
        redis.call('PUBLISH', ARGV[10], ARGV[11])
        return stored
        """
    )

    /// KEYS: generations. ARGV: the agent (`""`: every page), the channel, the message.
    /// One agent's change ends the generation of its pages and of the pages without an agent filter; a
    /// change that cannot be pinned to an agent ends every page's. Returns the new generation.
    static let invalidate = RedisScript(
        """
        local result
        if ARGV[1] == '' then
          result = redis.call('HINCRBY', KEYS[1], 'all', 1)
        else
          redis.call('HINCRBY', KEYS[1], 'none', 1)
          result = redis.call('HINCRBY', KEYS[1], 'a:' .. ARGV[1], 1)
        end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return result
        """
    )

    /// KEYS: the flight lock, the result. ARGV: the leader's token, how long followers may read the result in
    /// ms, the channel, the message. Releases a lock its leader gives up without an answer, leaves status 0
    /// as the result (followers then try again), and tells the followers.
    static let abandonFlight = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        redis.call('SET', KEYS[2], '0 \\n', 'PX', ARGV[2])
        redis.call('PUBLISH', ARGV[3], ARGV[4])
        return 1
        """
    )

    /// KEYS: the team's bucket. ARGV: its budget per minute (more than 0).
    /// A token bucket that holds at most a minute's budget and refills continuously, on Redis's clock; a
    /// changed budget keeps what is left within the new bound. Returns `{1, 0}` when a request was spent,
    /// `{0, ms until the next token}` when the budget is spent.
    static let spendBudget = RedisScript(
        """
        local rate = tonumber(ARGV[1])
        local now = redis.call('TIME')
        local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        local bucket = redis.call('HMGET', KEYS[1], 't', 'at')
        local tokens = tonumber(bucket[1]) or rate
        local at = tonumber(bucket[2]) or nowMs
        if tokens > rate then tokens = rate end
        if nowMs > at then tokens = math.min(rate, tokens + (nowMs - at) * rate / 60000) end
        local spent, wait = 0, 0
        if tokens >= 1 then
          tokens = tokens - 1
          spent = 1
        else
          wait = math.ceil((1 - tokens) * 60000 / rate)
        end
        redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', nowMs)
        redis.call('PEXPIRE', KEYS[1], 120000)
        return {spent, wait, math.floor(tokens * 1000)}
        """
    )
}
