import GatewayCore

/// The Lua scripts of the shared governor, and how their replies read: taking a lease and giving one back
/// are each one step on Redis, timed by Redis's clock only (`TIME` for leases, `PX` for the back-off and the
/// learned limit), so replicas whose clocks differ still agree.
///
/// Three keys per credential: `leases`, a sorted set of lease tokens scored by when each expires (Redis
/// milliseconds), so a replica that dies frees its slots when its leases run out; `backoff`, a string that
/// lives exactly as long as the back-off after a 429; `learned`, a hash of what 429s taught: `cap` (the
/// upstream's `maximum-concurrent-requests`), `successes` since (raising `cap` by one after
/// ``UpstreamGovernor/successesToRaiseLimit``) and `streak` (429s in a row, for the exponential back-off),
/// expiring ``learnedLifeMilliseconds`` after its last change.
enum GovernorScripts {
    /// How long what 429s taught is kept after its last change: a limit learned during an incident does not
    /// outlive it for good even when too few requests pass to raise it back.
    static let learnedLifeMilliseconds = 15 * 60 * 1_000

    /// KEYS: leases, backoff, learned. ARGV: the lease's token, its life in ms, the configured limit.
    /// Drops expired leases, then returns `{'backoff', ms left, limit}` while backing off, else
    /// `{'granted', leases held, limit}` having added the lease, or `{'full', leases held, limit}`.
    static let acquire = RedisScript(
        """
        local limit = tonumber(ARGV[3])
        local cap = tonumber(redis.call('HGET', KEYS[3], 'cap') or '')
        if cap and cap < limit then limit = cap end
        local left = redis.call('PTTL', KEYS[2])
        if left > 0 then return {'backoff', left, limit} end
        local now = redis.call('TIME')
        local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
        local held = redis.call('ZCARD', KEYS[1])
        if held >= limit then return {'full', held, limit} end
        local life = tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], nowMs + life, ARGV[1])
        if redis.call('PTTL', KEYS[1]) < life then redis.call('PEXPIRE', KEYS[1], life) end
        return {'granted', held + 1, limit}
        """
    )

    /// KEYS: leases, backoff, learned. ARGV: the lease's token, the outcome (`success`, `rateLimited` or
    /// `other`), the configured limit, successes to raise the learned limit, `Retry-After` in ms (-1: none),
    /// the upstream's maximum (0: none), the longest exponential back-off in ms, the learned hash's life in ms,
    /// the channel to announce the free slot on.
    /// Gives the lease back and learns from the outcome as ``UpstreamGovernor`` does; returns
    /// `{back-off ms left, limit}`.
    static let release = RedisScript(
        """
        redis.call('ZREM', KEYS[1], ARGV[1])
        local configured = tonumber(ARGV[3])
        local left = redis.call('PTTL', KEYS[2])
        if left < 0 then left = 0 end
        if ARGV[2] == 'success' then
          redis.call('HDEL', KEYS[3], 'streak')
          local cap = tonumber(redis.call('HGET', KEYS[3], 'cap') or '')
          if cap then
            if redis.call('HINCRBY', KEYS[3], 'successes', 1) >= tonumber(ARGV[4]) then
              if cap + 1 >= configured then
                redis.call('HDEL', KEYS[3], 'cap', 'successes')
              else
                redis.call('HSET', KEYS[3], 'cap', cap + 1, 'successes', 0)
              end
            end
            redis.call('PEXPIRE', KEYS[3], ARGV[8])
          end
        elseif ARGV[2] == 'rateLimited' then
          local streak = redis.call('HINCRBY', KEYS[3], 'streak', 1)
          redis.call('HSET', KEYS[3], 'successes', 0)
          local maximum = tonumber(ARGV[6])
          if maximum > 0 then
            local cap = tonumber(redis.call('HGET', KEYS[3], 'cap') or '')
            if not cap or maximum < cap then redis.call('HSET', KEYS[3], 'cap', maximum) end
          end
          redis.call('PEXPIRE', KEYS[3], ARGV[8])
          local delay = tonumber(ARGV[5])
          if delay < 0 then
            -- 1 s, 2 s, 4 s, ... up to the configured maximum, as the local governor does.
            delay = math.min(tonumber(ARGV[7]), 1000 * 2 ^ math.min(streak - 1, 40))
          end
          if delay > left then
            redis.call('SET', KEYS[2], '1', 'PX', delay)
            left = delay
          end
        end
        redis.call('PUBLISH', ARGV[9], '')
        local limit = configured
        local cap = tonumber(redis.call('HGET', KEYS[3], 'cap') or '')
        if cap and cap < limit then limit = cap end
        return {left, limit}
        """
    )

    /// What ``acquire`` answered.
    enum AcquireReply: Equatable {
        /// The lease was taken.
        case granted(limit: Int)
        /// Every slot is leased.
        case full(limit: Int)
        /// The key backs off for this many more milliseconds.
        case backingOff(milliseconds: Int, limit: Int)

        /// The limit in force, as Redis saw it.
        var limit: Int {
            switch self {
            case .granted(let limit), .full(let limit), .backingOff(_, let limit): limit
            }
        }

        /// Reads the script's reply.
        init(_ reply: RESPValue) throws(RedisError) {
            let parts = reply.array ?? []
            guard parts.count == 3, let count = parts[1].int, let limit = parts[2].int.map({ max(1, $0) }) else {
                throw RedisError.protocolError("unexpected reply to the governor's acquire: \(reply)")
            }
            switch parts[0].string {
            case "granted": self = .granted(limit: limit)
            case "full": self = .full(limit: limit)
            case "backoff": self = .backingOff(milliseconds: max(1, count), limit: limit)
            default: throw RedisError.protocolError("unexpected reply to the governor's acquire: \(reply)")
            }
        }
    }

    /// What ``release`` answered.
    struct ReleaseReply: Equatable {
        /// Back-off left in milliseconds; 0 when not backing off.
        var backoffMilliseconds: Int
        /// The limit in force, as Redis saw it.
        var limit: Int

        init(backoffMilliseconds: Int, limit: Int) {
            self.backoffMilliseconds = backoffMilliseconds
            self.limit = limit
        }

        /// Reads the script's reply.
        init(_ reply: RESPValue) throws(RedisError) {
            let parts = reply.array ?? []
            guard parts.count == 2, let left = parts[0].int, let limit = parts[1].int else {
                throw RedisError.protocolError("unexpected reply to the governor's release: \(reply)")
            }
            self.init(backoffMilliseconds: max(0, left), limit: max(1, limit))
        }
    }

    /// ``release``'s ARGV for giving back `token` after `outcome`, under `configuration`, announcing on
    /// `channel`. A `Retry-After` is bounded as the local governor bounds it.
    static func releaseArguments(
        token: String,
        outcome: UpstreamGovernor.Outcome,
        configuration: UpstreamGovernor.Configuration,
        channel: String
    ) -> [RedisArgument] {
        let name: String
        var retryAfterMilliseconds = -1
        var maximum = 0
        switch outcome {
        case .success:
            name = "success"
        case .rateLimited(let retryAfter, let maximumConcurrent):
            name = "rateLimited"
            if let retryAfter {
                retryAfterMilliseconds = min(max(0, retryAfter), UpstreamGovernor.longestRetryAfterSeconds) * 1_000
            }
            maximum = max(0, maximumConcurrent ?? 0)
        case .other:
            name = "other"
        }
        return [
            .string(token), .string(name), .integer(max(1, configuration.maxConcurrency)),
            .integer(UpstreamGovernor.successesToRaiseLimit), .integer(retryAfterMilliseconds), .integer(maximum),
            .integer(max(1, configuration.backoffMaxSeconds) * 1_000), .integer(learnedLifeMilliseconds),
            .string(channel),
        ]
    }
}
